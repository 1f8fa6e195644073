from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from demo.models import Notification, Post
from django_push.hub import health, heartbeat, replay
from django_push.hub.models import Content, Delivery, HubSubscription
from django_push.publisher import publish_on_commit
from django_push.publisher.headers import hub_links
from django_push.subscriber import heartbeat as subscriber_heartbeat
from django_push.subscriber.models import Subscription


def feed_url() -> str:
    return f"http://{settings.HOST}{reverse('feed')}"


def index(request: HttpRequest) -> HttpResponse:
    return render(
        request, "demo/index.html", {"feed_url": feed_url(), "hub_url": settings.PUSH_HUB}
    )


@require_POST
def publish(request: HttpRequest) -> HttpResponse:
    title = request.POST.get("title", "").strip()[:200]
    if title:
        Post.objects.create(title=title, body=request.POST.get("body", "").strip())
        # The ping goes to the hub from the task worker once this transaction commits.
        publish_on_commit(feed_url())
    if request.headers.get("Accept") == "application/json":
        return JsonResponse({"ok": bool(title)}, status=202 if title else 400)
    return redirect("index")


@require_POST
def send_again(request: HttpRequest) -> HttpResponse:
    """The hub sends the feed's latest content again to its subscribers, without fetching it
    (what the admin action and ``manage.py hub_replay`` do). A real site keeps this for staff."""
    try:
        sent = replay.send_again(topic=feed_url()).count
    except replay.ReplayError as exc:
        return JsonResponse({"ok": False, "error": str(exc)}, status=409)
    return JsonResponse({"ok": True, "deliveries": sent}, status=202)


@hub_links(self_url=lambda request: request.build_absolute_uri())
def post(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(Post, pk=pk)
    return HttpResponse(f"<h1>{item.title}</h1><p>{item.body}</p>")


def state(request: HttpRequest) -> JsonResponse:
    """Everything the live page shows, polled a few times a second."""
    subscription = Subscription.objects.filter(topic=feed_url()).first()
    latest = Content.objects.first()
    deliveries: dict[str, int] = {}
    if latest is not None:
        deliveries = health.delivery_counts(Content.objects.filter(pk=latest.pk))
    return JsonResponse(
        {
            "posts": [
                {"title": p.title, "at": p.published_at.isoformat()} for p in Post.objects.all()[:5]
            ],
            "hub": {
                "subscribers": HubSubscription.objects.active().count(),
                "contents": Content.objects.count(),
                "latest": latest
                and {
                    "at": latest.fetched_at.isoformat(),
                    "bytes": len(latest.body),
                    "type": latest.content_type,
                },
                "deliveries": {
                    status: deliveries.get(status, 0) for status in Delivery.Status.values
                },
                "heartbeat": heartbeat.age(),
            },
            "subscription": subscription
            and {
                "topic": subscription.topic,
                "hub": subscription.hub,
                "verified": subscription.verified,
                "pending": subscription.pending,
                "lease_expiration": subscription.lease_expiration
                and subscription.lease_expiration.isoformat(),
                "lease_seconds": subscription.lease_seconds,
                "signed": bool(subscription.secret),
                "error": subscription.last_error,
                "last_poll": subscription.last_poll_at and subscription.last_poll_at.isoformat(),
                # Seconds since the renewal or reconciliation task last ran.
                "heartbeat": subscriber_heartbeat.age(),
                # The hub's page for this subscription, reachable with its secret only.
                "diagnostics": subscription.diagnostics_url(),
            },
            "notifications": [
                {
                    "id": n.pk,
                    "at": n.received_at.isoformat(),
                    "titles": n.titles,
                    "signature": n.signature,
                    "signature_valid": n.signature_valid,
                    "size": n.size,
                    "content_type": n.content_type,
                    "polled": n.polled,
                    "sequence": n.sequence,
                }
                for n in Notification.objects.all()[:8]
            ],
        }
    )
