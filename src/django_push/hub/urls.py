from __future__ import annotations

from django.urls import path

from django_push.hub.views import hub, publish

urlpatterns = [
    path("", hub, name="push_hub"),
    path("publish/", publish, name="push_hub_publish"),
]
