"""The hub endpoint, and the baseline: a bare view doing one INSERT."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from hub_site.models import Hit


@csrf_exempt
def bare(request: HttpRequest) -> HttpResponse:
    """What any Django view that stores a form costs: parse it, INSERT one row, answer 202."""
    Hit.objects.create(callback=request.POST.get("hub.callback", ""))
    return HttpResponse("stored", status=202, content_type="text/plain")


urlpatterns = [
    path("bare/", bare),
    path("hub/", include("django_push.hub.urls")),
]
