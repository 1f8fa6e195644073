"""The subscriber's callback, and the baseline: a bare view doing one indexed query."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from django_push.subscriber.models import Subscription


def bare(request: HttpRequest, pk: int) -> HttpResponse:
    """What any Django view costs: read one row by primary key, answer a short text."""
    subscription = Subscription.objects.filter(pk=pk).first()
    return HttpResponse(subscription.topic if subscription else "", content_type="text/plain")


def bare_exists(request: HttpRequest, pk: int) -> HttpResponse:
    """The lightest view that still asks the database: does the row exist (the baseline)."""
    found = Subscription.objects.filter(pk=pk).exists()
    return HttpResponse("yes" if found else "", content_type="text/plain")


urlpatterns = [
    path("bare/<int:pk>/", bare),
    path("bare-exists/<int:pk>/", bare_exists),
    path("subscriber/", include("django_push.subscriber.urls")),
]
