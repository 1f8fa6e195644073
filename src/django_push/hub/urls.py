from __future__ import annotations

from django.urls import path

from django_push.hub.views import hub

urlpatterns = [
    path("", hub, name="push_hub"),
]
