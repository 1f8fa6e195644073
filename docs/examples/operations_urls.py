# urls.py: the hub, its health view, the subscriber's, and the Prometheus scrape view.
from django.urls import include, path

from django_push.hub.health import health
from django_push.subscriber.heartbeat import health as subscriber_health

urlpatterns = [
    path("hub/", include("django_push.hub.urls")),
    path("hub/health/", health, name="hub_health"),
    path("subscriber/health/", subscriber_health, name="subscriber_health"),
    # Route it where only Prometheus can reach it (see "Who may scrape" below).
    path("metrics/", include("django_push.metrics.urls")),
]
