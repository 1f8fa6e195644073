from __future__ import annotations

import datetime
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_push.hub import replay
from django_push.hub.breakers import HostBreaker
from django_push.hub.models import Content, Delivery, HubSubscription, Intent, Ping
from django_push.hub.tasks import start_fanout


class ManagedByHub:
    """Rows the hub creates itself (verifications, publish requests, contents, deliveries):
    no "Add" in the admin, where one would be a row no worker expects."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(HubSubscription)
class HubSubscriptionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["callback", "topic", "active", "expires_at", "failures"]
    list_filter = ["topic"]
    search_fields = ["callback", "topic"]
    readonly_fields = ["created_at", "verified_at", "last_delivery", "failures"]
    exclude = ["secret"]
    actions = ["send_latest_again"]

    @admin.display(description=_("active"), boolean=True)
    def active(self, obj: HubSubscription) -> bool:
        return obj.is_active

    @admin.display(description=_("last delivery"))
    def last_delivery(self, obj: HubSubscription) -> datetime.datetime | None:
        return obj.last_delivered_at()

    @admin.action(
        description=_("Send the latest content of their topic again"), permissions=["change"]
    )
    def send_latest_again(self, request: HttpRequest, queryset: QuerySet[HubSubscription]) -> None:
        by_topic: dict[str, list[int]] = {}
        for pk, topic in queryset.values_list("pk", "topic"):
            by_topic.setdefault(topic, []).append(pk)
        for topic, pks in sorted(by_topic.items()):
            _send_again(self, request, topic=topic, subscription_ids=pks)


@admin.register(Intent)
class IntentAdmin(ManagedByHub, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["mode", "callback", "topic", "status", "reason", "created_at"]
    list_filter = ["status", "mode"]
    search_fields = ["callback", "topic"]
    exclude = ["secret"]


@admin.register(Ping)
class PingAdmin(ManagedByHub, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "topic",
        "status",
        "reason",
        "attempts",
        "received_at",
        "finished_at",
        "content",
    ]
    list_filter = ["status"]
    search_fields = ["topic"]
    raw_id_fields = ["content"]


@admin.register(Content)
class ContentAdmin(ManagedByHub, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["topic", "content_type", "size", "fetched_at", "delivered", "pending", "failed"]
    search_fields = ["topic"]
    readonly_fields = [
        "topic",
        "content_type",
        "sha256",
        "etag",
        "last_modified",
        "hub_url",
        "fetched_at",
    ]
    exclude = ["body"]
    actions = ["send_again"]

    @admin.action(
        description=_("Send again to every active subscriber of the topic"), permissions=["change"]
    )
    def send_again(self, request: HttpRequest, queryset: QuerySet[Content]) -> None:
        for pk in queryset.values_list("pk", flat=True):
            _send_again(self, request, content_id=pk)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Content]:
        # Sums over the content's ranges plus its delivery rows (failures, sent again).
        queryset: QuerySet[Content] = super().get_queryset(request)
        return queryset.with_counts()  # type: ignore[attr-defined,no-any-return]

    @admin.display(description=_("bytes"))
    def size(self, obj: Content) -> int:
        return len(obj.body)

    @admin.display(description=_("delivered"))
    def delivered(self, obj: Any) -> int:
        return int(obj.n_delivered)

    @admin.display(description=_("pending"))
    def pending(self, obj: Any) -> int:
        return int(obj.n_pending)

    @admin.display(description=_("gave up"))
    def failed(self, obj: Any) -> int:
        return int(obj.n_failed)


@admin.register(Delivery)
class DeliveryAdmin(ManagedByHub, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "content",
        "subscription",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status",
        "last_error",
    ]
    list_filter = ["status"]
    list_select_related = ["content", "subscription"]
    raw_id_fields = ["content", "subscription"]
    actions = ["retry_now", "drop"]

    @admin.action(description=_("Retry selected deliveries now"), permissions=["change"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        due = queryset.filter(status=Delivery.Status.PENDING).update(
            next_attempt_at=timezone.now(), claimed_until=None
        )
        # Given up: a fresh retry schedule, as from the "gave up" page.
        count = due + Delivery.objects.filter(pk__in=queryset.values("pk")).gave_up().send_again()
        if count:
            start_fanout()
        self.message_user(request, f"{count} delivery(ies) queued again.", messages.SUCCESS)

    @admin.action(description=_("Drop selected deliveries"), permissions=["delete"])
    def drop(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        count, _ = queryset.delete()
        self.message_user(request, f"{count} delivery(ies) dropped.", messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        gave_up = path(
            "gave-up/",
            self.admin_site.admin_view(self.gave_up_view),
            name="push_hub_delivery_gave_up",
        )
        return [gave_up, *super().get_urls()]

    def gave_up_view(self, request: HttpRequest) -> HttpResponse:
        """Given-up deliveries by callback host; POST ``host`` (or ``all``) retries them.

        ``admin_view`` lets only active staff in and checks the CSRF token; changing
        deliveries also needs the change permission.
        """
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            if not self.has_change_permission(request):
                raise PermissionDenied
            host = request.POST.get("host", "")
            if request.POST.get("all") or host:
                count = replay.retry_gave_up(None if request.POST.get("all") else host)
                self.message_user(request, f"{count} delivery(ies) queued again.")
            else:
                self.message_user(request, "Choose a host, or all.", messages.WARNING)
            return HttpResponseRedirect(reverse("admin:push_hub_delivery_gave_up"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Deliveries the hub gave up on, by callback host"),
            "groups": replay.gave_up_by_host(),
            "can_retry": self.has_change_permission(request),
        }
        return TemplateResponse(request, "admin/push_hub/delivery/gave_up.html", context)


class OpenFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "open"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("open or probing")), ("no", _("closed"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(open_until__isnull=False)
        if self.value() == "no":
            return queryset.filter(open_until__isnull=True)
        return queryset


@admin.register(HostBreaker)
class HostBreakerAdmin(ManagedByHub, admin.ModelAdmin):  # type: ignore[type-arg]
    """Circuit breakers per callback host, open ones first."""

    list_display = ["host", "state", "open_until", "opened_at", "opens", "sent", "failed"]
    list_filter = [OpenFilter]
    search_fields = ["host"]
    readonly_fields = [
        "host",
        "window_started_at",
        "sent",
        "failed",
        "open_until",
        "opened_at",
        "opens",
        "last_error",
    ]
    actions = ["close"]

    def get_ordering(self, request: HttpRequest) -> list[Any]:
        return [F("open_until").desc(nulls_last=True), "host"]

    @admin.display(description=_("state"))
    def state(self, obj: HostBreaker) -> str:
        return obj.state

    @admin.action(description=_("Close selected breakers"), permissions=["change"])
    def close(self, request: HttpRequest, queryset: QuerySet[HostBreaker]) -> None:
        count = HostBreaker.objects.filter(pk__in=queryset.values("pk")).close()
        self.message_user(request, f"{count} breaker(s) closed.", messages.SUCCESS)


def _send_again(model_admin: admin.ModelAdmin, request: HttpRequest, **chosen: Any) -> None:  # type: ignore[type-arg]
    try:
        plan = replay.send_again(**chosen)
    except replay.ReplayError as exc:
        model_admin.message_user(request, str(exc), messages.WARNING)
        return
    model_admin.message_user(request, f"Sending {plan}.", messages.SUCCESS)
