from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from demo import views
from demo.feeds import PostFeed
from django_push.hub.health import health

urlpatterns = [
    path("", views.index, name="index"),
    path("publish/", views.publish, name="publish"),
    path("send-again/", views.send_again, name="send_again"),
    path("api/state/", views.state, name="state"),
    path("posts/<int:pk>/", views.post, name="post"),
    path("feed/", PostFeed(), name="feed"),
    path("hub/health/", health, name="hub_health"),
    path("hub/", include("django_push.hub.urls")),
    path("metrics/", include("django_push.metrics.urls")),
    path("subscriber/", include("django_push.subscriber.urls")),
    path("admin/", admin.site.urls),
]
