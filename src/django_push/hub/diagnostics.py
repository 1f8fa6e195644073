"""Self-serve diagnostics: a subscription's page for whoever holds its secret, and a topic's
page for anyone (``PUSH_HUB_DIAGNOSTICS``, ``PUSH_HUB_TOPIC_DIAGNOSTICS``).

Whatever is wrong with a request (unknown token, wrong proof, no secret, page switched off,
topic not served here) it gets the same 404, and costs at most one indexed query: a stranger
learns nothing, and cannot make the database work for a guess.
"""

from __future__ import annotations

import datetime
import hmac
import json
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from django_push import diagnostics, protocol
from django_push.conf import conf
from django_push.hub.models import Content, Delivery, HubSubscription, Ping, Span
from django_push.hub.params import topic_allowed
from django_push.responses import plain_text

# Contents and failures listed on a subscription's page.
RECENT = 10
NOT_FOUND = "No diagnostics here"
# What a delivery row says of its content, on the page.
ROW_STATUS: dict[str, str] = {
    Delivery.Status.PENDING: "retrying",
    Delivery.Status.DELIVERED: "delivered",
    Delivery.Status.FAILED: "gave up",
}


def find_subscription(token: str) -> HubSubscription | None:
    """The subscription whose secret proves ``token``: one query on the indexed lookup key,
    the proof compared in constant time. ``None`` for anything else, a secretless row too."""
    parts = diagnostics.split_token(token)
    if parts is None:
        return None
    key, proof = parts
    row = HubSubscription.objects.filter(diagnostics_key=key).first()
    if row is None or not row.secret:
        # The same work as a wrong proof, so the answer's timing says nothing either.
        hmac.compare_digest(proof, diagnostics.proof(key, key, key))
        return None
    expected = diagnostics.proof(row.topic, row.callback, row.secret)
    return row if hmac.compare_digest(proof, expected) else None


def recent_deliveries(subscription: HubSubscription) -> list[dict[str, Any]]:
    """The last contents of the topic owed to ``subscription``, newest first, each with what
    became of it. Latency is from the fetch to the 2xx.

    A success leaves no row of its own (the fan-out by ranges): it is read from the range
    that held the subscription, and its finish time. A failure is a delivery row (status,
    attempts, next retry) until a newer content owed to the same subscription supersedes
    it and the row is dropped; so behind a newer content, a range without a row reads
    "delivered or superseded".
    """
    is_diff = models.ExpressionWrapper(
        models.Q(feed_diff__isnull=False), output_field=models.BooleanField()
    )
    contents = list(
        Content.objects.filter(
            topic=subscription.topic,
            upto__gte=subscription.pk,
            fetched_at__gte=subscription.created_at,
        )
        .annotate(is_diff=is_diff)
        .order_by("-pk")
        .values("pk", "fetched_at", "finished_at", "is_diff")[:RECENT]
    )
    ids = [content["pk"] for content in contents]
    spans = {
        span.content_id: span
        for span in Span.objects.filter(
            content_id__in=ids, first__lte=subscription.pk, last__gte=subscription.pk
        )
    }
    rows = {row.content_id: row for row in subscription.deliveries.filter(content_id__in=ids)}
    lines, newer_whole = [], False
    for content in contents:
        fetched = content["fetched_at"]
        line: dict[str, Any] = {"content": content["pk"], "fetched_at": fetched}
        row, span = rows.get(content["pk"]), spans.get(content["pk"])
        if row is not None:
            line.update(failure_line(row))
            line["status"] = ROW_STATUS[row.status]
            line["delivered_at"] = row.delivered_at
        elif span is not None and span.status == Span.Status.DONE:
            superseded = newer_whole and not content["is_diff"]
            status = "delivered or superseded" if superseded else "delivered"
            line.update(status=status, delivered_at=span.finished_at)
        elif span is not None or content["finished_at"] is None:
            line.update(status="sending", delivered_at=None)
        else:  # the fan-out ended without a range for it: its lease had ended
            line.update(status="not sent", delivered_at=None)
        at = line["delivered_at"]
        line["latency"] = None if at is None else (at - fetched).total_seconds()
        newer_whole = newer_whole or not content["is_diff"]
        lines.append(line)
    return lines


def failure_line(row: Delivery) -> dict[str, Any]:
    retrying = row.status == Delivery.Status.PENDING
    return {
        "content": row.content_id,
        "state": ROW_STATUS[row.status],
        "attempts": row.attempts,
        "last_status": row.last_status,
        "last_error": row.last_error,
        "first_failure_at": row.first_failure_at,
        "next_attempt_at": row.next_attempt_at if retrying else None,
    }


def last_delivered_at(
    subscription: HubSubscription, lines: list[dict[str, Any]]
) -> datetime.datetime | None:
    """When a content last reached ``subscription``, when that is known for sure.

    With no failure since the last success (``failures`` is 0), the ranges tell it
    (:meth:`HubSubscription.last_delivered_at`). After a failure, a range without a row may
    hide a failed retry that a newer content superseded: only retries delivered and the
    contents read "delivered" count."""
    if not subscription.failures:
        return subscription.last_delivered_at()
    by_retry = subscription.deliveries.filter(status=Delivery.Status.DELIVERED).aggregate(
        at=models.Max("delivered_at")
    )["at"]
    seen = [line["delivered_at"] for line in lines if line["status"] == "delivered"]
    return max([at for at in [by_retry, *seen] if at is not None], default=None)


def subscription_report(subscription: HubSubscription) -> dict[str, Any]:
    lines = recent_deliveries(subscription)
    failures = (
        subscription.deliveries.exclude(status=Delivery.Status.DELIVERED)
        .filter(attempts__gt=0)
        .order_by("-pk")[:RECENT]
    )
    return {
        "topic": subscription.topic,
        "callback": subscription.callback,
        "state": "active" if subscription.is_active else "expired",
        "lease_seconds": subscription.lease_seconds,
        "lease_ends_at": subscription.expires_at,
        "created_at": subscription.created_at,
        "verified_at": subscription.verified_at,
        "failed_attempts": subscription.failures,
        "last_delivered_at": last_delivered_at(subscription, lines),
        "deliveries": lines,
        "failures": [failure_line(row) for row in failures],
    }


def topic_report(topic: str) -> dict[str, Any] | None:
    """What the hub knows of ``topic``, or ``None`` when it never fetched or was asked to
    fetch it (its pings and contents, as old as ``PUSH_HUB_RETENTION`` keeps)."""
    ping = Ping.objects.filter(topic=topic).order_by("-received_at").first()
    content = Content.objects.filter(topic=topic).defer("body", "feed_diff").order_by("-pk").first()
    if ping is None and content is None:
        return None
    return {
        "topic": topic,
        "last_fetch_at": ping and (ping.finished_at or ping.received_at),
        "last_fetch_outcome": ping and str(ping.get_status_display()),
        "last_fetch_reason": ping.reason if ping else "",
        "last_content_at": content and content.fetched_at,
        "sha256": content and content.sha256,
        "content_type": content and content.content_type,
        # Content.etag, where conditional fetches store one.
        "etag": getattr(content, "etag", None) or None,
        "subscribers": HubSubscription.objects.active().filter(topic=topic).count(),
    }


def answer(request: HttpRequest, report: dict[str, Any], template: str) -> HttpResponse:
    """The report as HTML, or as JSON with ``?format=json``; never cached, never indexed,
    and no Referer leaves the page (its URL is the capability)."""
    if request.GET.get("format") == "json":
        body = json.dumps(report, default=_json_value, indent=2)
        response = HttpResponse(body, content_type="application/json")
    else:
        response = render(request, template, {"report": report})
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _json_value(value: object) -> str:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


@csrf_exempt  # GET and HEAD only: a POST gets 405, not a CSRF page
@login_not_required
@require_safe
def subscription_page(request: HttpRequest, token: str) -> HttpResponse:
    """A subscription's state, lease, recent deliveries and failures, for whoever holds its
    secret (see :mod:`django_push.diagnostics` for the token)."""
    subscription = find_subscription(token) if conf.PUSH_HUB_DIAGNOSTICS else None
    if subscription is None:
        return plain_text(404, NOT_FOUND)
    return answer(
        request, subscription_report(subscription), "push_hub/diagnostics_subscription.html"
    )


@csrf_exempt
@login_not_required
@require_safe
def topic_page(request: HttpRequest) -> HttpResponse:
    """``?hub.topic=<URL>``: a topic's last fetch, its outcome and its subscriber count."""
    if not conf.PUSH_HUB_TOPIC_DIAGNOSTICS:
        return plain_text(404, NOT_FOUND)
    topic = request.GET.get(protocol.TOPIC, "")
    if not topic:
        return plain_text(400, f"{protocol.TOPIC} is required")
    if len(topic) > Ping._meta.get_field("topic").max_length:  # type: ignore[operator]
        return plain_text(400, f"{protocol.TOPIC} is too long")
    try:
        allowed = topic_allowed(topic)
    except ValueError:
        return plain_text(400, f"{protocol.TOPIC} is not a URL")
    report = topic_report(topic) if allowed else None
    if report is None:
        return plain_text(404, NOT_FOUND)
    return answer(request, report, "push_hub/diagnostics_topic.html")
