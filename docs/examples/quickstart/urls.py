# urls.py of the project: the feed of step 2, the hub and the subscriber's callback view.
from blog.feeds import LatestPostsFeed
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("feed/", LatestPostsFeed(), name="latest_posts_feed"),
    path("hub/", include("django_push.hub.urls")),
    path("subscriber/", include("django_push.subscriber.urls")),
]
