from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from django_push import protocol
from django_push.exceptions import PushError
from django_push.subscriber.models import Subscription
from django_push.subscriber.renewal import send_each


class ExpirationFilter(admin.SimpleListFilter):
    title = _("Expired")
    parameter_name = "expired"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("true", _("Yes")), ("false", _("No"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        if self.value() == "true":
            return queryset.filter(lease_expiration__lte=timezone.now())
        if self.value() == "false":
            return queryset.filter(lease_expiration__gt=timezone.now())
        return None


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "short_topic",
        "hub",
        "verified",
        "pending",
        "expired",
        "lease_expiration",
        "last_notification_at",
        "denied_at",
    ]
    list_filter = ["verified", ExpirationFilter, "pending", "hub"]
    search_fields = ["topic", "hub"]
    readonly_fields = [
        "callback_url",
        "pending",
        "lease_seconds",
        "requested_at",
        "denied_at",
        "denied_reason",
        "last_error",
        "last_notification_at",
        "legacy_callback",
        "legacy_moved_at",
    ]
    fields = ["hub", "topic", "verified", "lease_expiration", *readonly_fields]
    actions = ["renew", "unsubscribe"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(description=_("topic"), ordering="topic")
    def short_topic(self, obj: Subscription) -> str:
        return obj.truncated_topic()

    @admin.display(description=_("expired"), boolean=True)
    def expired(self, obj: Subscription) -> bool:
        return obj.has_expired()

    @admin.action(description=_("Renew selected subscriptions"), permissions=["change"])
    def renew(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        # A renewal also moves a 1.1 row to a capability URL.
        self._send(request, queryset, protocol.SUBSCRIBE, _("renewed"))

    @admin.action(description=_("Unsubscribe from selected topics"), permissions=["change"])
    def unsubscribe(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        self._send(request, queryset, protocol.UNSUBSCRIBE, _("asked to unsubscribe"))

    def _send(
        self,
        request: HttpRequest,
        queryset: QuerySet[Subscription],
        mode: protocol.Mode,
        done: Any,
    ) -> None:
        def report(subscription: Subscription, error: PushError | None) -> None:
            if error is not None:
                self.message_user(request, f"{subscription}: {error}", messages.ERROR)

        succeeded, _failed = send_each(queryset, mode, report)
        if succeeded:
            self.message_user(
                request,
                ngettext(
                    "%(count)d subscription %(done)s.",
                    "%(count)d subscriptions %(done)s.",
                    succeeded,
                )
                % {"count": succeeded, "done": done},
                messages.SUCCESS,
            )


# 1.1 exported this name (with its typo); keep it importable.
SubscriptionAmin = SubscriptionAdmin
