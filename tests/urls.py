from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from django_push.hub.health import health
from django_push.subscriber.heartbeat import health as subscriber_health
from tests.testapp import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("subscriber/", include("django_push.subscriber.urls")),
    path(
        "sites/<slug:site>/callback/<int:pk>/", views.SiteCallback.as_view(), name="site_callback"
    ),
    path("hub/", include("django_push.hub.urls")),
    path("hub-health/", health, name="push_hub_health"),
    path("subscriber-health/", subscriber_health, name="push_subscriber_health"),
    path("metrics/", include("django_push.metrics.urls")),
    path("feed/", views.BlogFeed(), name="feed"),
    path("mymodel/feed/", views.MyFeed(), name="feed_for_mymodel"),
    path("custom-hub-feed/", views.CustomHubFeed(), name="custom_hub_feed"),
    path("dynamic-hub-feed/", views.DynamicHubFeed(), name="dynamic_hub_feed"),
    path("rss/", views.BlogRssFeed(), name="rss_feed"),
    path("page/", views.page, name="page"),
    path("topic.txt", views.text_topic, name="text_topic"),
    path("html-topic/", views.html_topic, name="html_topic"),
    path(
        "html-topic/explicit/",
        views.html_topic,
        {"explicit": True},
        name="html_topic_explicit",
    ),
]
