from __future__ import annotations

from django.urls import path

from django_push.metrics.views import metrics

urlpatterns = [
    path("", metrics, name="push_metrics"),
]
