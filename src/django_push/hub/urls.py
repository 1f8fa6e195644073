from __future__ import annotations

from django.urls import path

from django_push.hub.diagnostics import subscription_page, topic_page
from django_push.hub.views import hub, publish

urlpatterns = [
    path("", hub, name="push_hub"),
    path("publish/", publish, name="push_hub_publish"),
    path("diagnostics/topic/", topic_page, name="push_hub_topic_diagnostics"),
    path("diagnostics/<str:token>/", subscription_page, name="push_hub_diagnostics"),
]
