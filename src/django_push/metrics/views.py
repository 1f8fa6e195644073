"""The Prometheus scrape view: route it where only your Prometheus can reach it."""

from __future__ import annotations

import os

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from django_push import metrics as push_metrics


@csrf_exempt  # GET and HEAD only: a POST gets 405, not a CSRF page
@login_not_required
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """The default registry in Prometheus' text format, or, when the processes share
    ``PROMETHEUS_MULTIPROC_DIR``, what all of them counted; 404 while metrics are off."""
    if push_metrics.instruments() is None:
        raise Http404("Metrics are off")
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
    from prometheus_client.registry import CollectorRegistry

    from django_push.metrics.collector import HubCollector

    registry: CollectorRegistry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Counted in the task workers too: add up every process's files, then the gauges.
        from django.apps import apps
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        if apps.is_installed("django_push.hub"):
            registry.register(HubCollector())
    response = HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
