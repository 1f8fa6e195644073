from __future__ import annotations

import datetime
from typing import Any

from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from django_push import protocol
from django_push.exceptions import PushError
from django_push.subscriber.models import Subscription
from django_push.subscriber.reconcile import POLL_FIELDS, reconcile
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
        "last_push",
        "last_poll",
        "denied_at",
    ]
    list_filter = ["verified", ExpirationFilter, "pending", "hub"]
    search_fields = ["topic", "hub"]
    readonly_fields = [
        "callback_url",
        "diagnostics",
        "pending",
        "lease_seconds",
        "requested_at",
        "denied_at",
        "denied_reason",
        "last_error",
        "last_notification_at",
        "legacy_callback",
        "legacy_moved_at",
        "last_poll_at",
        "next_poll_at",
        "last_poll_error",
    ]
    fields = ["hub", "topic", "verified", "lease_expiration", "reconcile_seconds", *readonly_fields]
    actions = ["renew", "unsubscribe", "poll"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    # The hub decides whether a subscription is verified and when its lease ends: the add
    # page asks only for hub and topic and subscribes; the change page edits nothing.
    def get_fields(self, request: HttpRequest, obj: Subscription | None = None) -> Any:
        return ["hub", "topic"] if obj is None else self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: Subscription | None = None) -> Any:
        return [] if obj is None else self.fields

    def save_model(self, request: HttpRequest, obj: Subscription, form: Any, change: bool) -> None:
        if change:
            return  # nothing on the change page is editable
        obj.pk = Subscription.objects.subscribe(obj.topic, hub=obj.hub).pk
        obj.refresh_from_db()
        self.message_user(
            request,
            _(
                "The subscription request goes to the hub in the background; the hub's "
                "verification marks the subscription verified."
            ),
            messages.INFO,
        )

    @admin.display(description=_("topic"), ordering="topic")
    def short_topic(self, obj: Subscription) -> str:
        return obj.truncated_topic()

    @admin.display(description=_("expired"), boolean=True)
    def expired(self, obj: Subscription) -> bool:
        return obj.has_expired()

    @admin.display(description=_("diagnostics at the hub"))
    def diagnostics(self, obj: Subscription) -> str:
        """A link to the hub's diagnostics page of this subscription (django-push hubs)."""
        url = obj.diagnostics_url()
        if url is None:
            return "-"
        return format_html('<a href="{}" rel="noreferrer">{}</a>', url, _("open"))

    @admin.display(description=_("last push"), ordering="last_notification_at")
    def last_push(self, obj: Subscription) -> datetime.datetime | None:
        """When the hub last delivered (stamped at most once a minute)."""
        return obj.last_notification_at

    @admin.display(description=_("last poll"), ordering="last_poll_at")
    def last_poll(self, obj: Subscription) -> str:
        """When reconciliation last polled the topic, and its error if it failed."""
        if obj.last_poll_at is None:
            return "-"
        when = date_format(timezone.localtime(obj.last_poll_at), "DATETIME_FORMAT")
        return f"{when} ({obj.last_poll_error})" if obj.last_poll_error else when

    @admin.action(description=_("Poll selected topics now"), permissions=["change"])
    def poll(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        selected = Subscription.objects.active().filter(pk__in=queryset.values("pk"))
        report = reconcile(selected.only(*POLL_FIELDS))
        self.message_user(
            request,
            _("Reconciliation: %(report)s.") % {"report": report},
            messages.WARNING if report.counts["failed"] else messages.SUCCESS,
        )

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
