from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_push.hub.models import Content, Delivery, HubSubscription, Intent, Ping
from django_push.hub.tasks import start_fanout


@admin.register(HubSubscription)
class HubSubscriptionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["callback", "topic", "active", "expires_at", "last_delivery_at", "failures"]
    list_filter = ["topic"]
    search_fields = ["callback", "topic"]
    readonly_fields = ["created_at", "verified_at", "last_delivery_at", "failures"]
    exclude = ["secret"]

    @admin.display(description=_("active"), boolean=True)
    def active(self, obj: HubSubscription) -> bool:
        return obj.is_active


@admin.register(Intent)
class IntentAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["mode", "callback", "topic", "status", "reason", "created_at"]
    list_filter = ["status", "mode"]
    search_fields = ["callback", "topic"]
    exclude = ["secret"]


@admin.register(Ping)
class PingAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
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
class ContentAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["topic", "content_type", "size", "fetched_at", "delivered", "pending", "failed"]
    search_fields = ["topic"]
    readonly_fields = ["topic", "content_type", "sha256", "hub_url", "fetched_at"]
    exclude = ["body"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Content]:
        counts = {
            name: Count("deliveries", filter=Q(deliveries__status=status))
            for name, status in [
                ("n_delivered", Delivery.Status.DELIVERED),
                ("n_pending", Delivery.Status.PENDING),
                ("n_failed", Delivery.Status.FAILED),
            ]
        }
        queryset: QuerySet[Content] = super().get_queryset(request).annotate(**counts)
        return queryset

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
class DeliveryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
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

    @admin.action(description=_("Retry selected deliveries now"))
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        count = queryset.exclude(status=Delivery.Status.DELIVERED).update(
            status=Delivery.Status.PENDING, next_attempt_at=timezone.now(), claimed_until=None
        )
        start_fanout(count)
        self.message_user(request, f"{count} delivery(ies) queued again.", messages.SUCCESS)

    @admin.action(description=_("Drop selected deliveries"))
    def drop(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        count, _ = queryset.delete()
        self.message_user(request, f"{count} delivery(ies) dropped.", messages.SUCCESS)
