from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from demo import views
from demo.feeds import PostFeed

urlpatterns = [
    path("", views.index, name="index"),
    path("publish/", views.publish, name="publish"),
    path("api/state/", views.state, name="state"),
    path("posts/<int:pk>/", views.post, name="post"),
    path("feed/", PostFeed(), name="feed"),
    path("hub/", include("django_push.hub.urls")),
    path("subscriber/", include("django_push.subscriber.urls")),
    path("admin/", admin.site.urls),
]
