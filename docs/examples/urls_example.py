from blog.feeds import LatestPostsFeed  # your app's module: the feed of step 2
from django.urls import include, path

urlpatterns = [
    path("feed/", LatestPostsFeed(), name="latest_posts_feed"),
    path("hub/", include("django_push.hub.urls")),
    path("subscriber/", include("django_push.subscriber.urls")),
]
