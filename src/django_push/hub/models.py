"""The hub's state: subscriptions, verifications of intent, publish requests, published
contents and their deliveries.

Work lives here, not only in the task queue: a worker that dies mid-task leaves its
claimed rows behind, and the sweeper hands them to another worker once the claim has
expired (at-least-once delivery).
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Self, TypeVar
from urllib.parse import urlsplit

from django.db import connections, models, transaction
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_push import diagnostics, metrics

_Row = TypeVar("_Row", bound=models.Model)


class Grant(NamedTuple):
    """A verified subscribe: the subscription it makes or renews."""

    topic: str
    callback: str
    secret: str
    lease: int


class SubscriptionQuerySet(models.QuerySet["HubSubscription"]):
    def active(self) -> SubscriptionQuerySet:
        """Subscriptions whose lease has not ended: the ones content is delivered to."""
        return self.filter(expires_at__gt=timezone.now())

    def expired(self) -> SubscriptionQuerySet:
        return self.filter(expires_at__lte=timezone.now())

    def followed(self, topics: Iterable[str]) -> set[str]:
        """Which of ``topics`` have an active subscription: the only ones worth fetching or
        storing (a publish to nobody is recorded as skipped)."""
        # One EXISTS per topic (a publish names a few, PUSH_HUB_MAX_PUBLISH_URLS at most):
        # listing the topic of every active subscription grew with their number.
        active = self.active()
        return {topic for topic in dict.fromkeys(topics) if active.filter(topic=topic).exists()}

    def in_range(self, topic: str, first: int, last: int) -> SubscriptionQuerySet:
        """The active subscriptions of ``topic`` with ``first <= id <= last``: one range of a
        content's fan-out (index ``push_hub_topic_id``)."""
        return self.active().filter(topic=topic, pk__gte=first, pk__lte=last)

    def of_pairs(self, pairs: Iterable[tuple[str, str]]) -> SubscriptionQuerySet:
        """The subscriptions of these (topic, callback) pairs, by pk: two ``IN`` lists, so
        the statement stays flat whatever the number of pairs."""
        wanted = set(pairs)
        topics = {topic for topic, _ in wanted}
        callbacks = {callback for _, callback in wanted}
        rows = self.filter(topic__in=topics, callback__in=callbacks).values_list(
            "pk", "topic", "callback"
        )
        return self.filter(pk__in=[pk for pk, *pair in rows if tuple(pair) in wanted])

    def activate(
        self, grants: list[Grant], *, with_rows: bool = False
    ) -> list[tuple[HubSubscription, bool]]:
        """Create or renew the verified subscriptions ``grants`` in one INSERT ... ON CONFLICT:
        a renewal replaces the secret and lease (H-6). One grant per (topic, callback).

        With ``with_rows`` (for ``subscription_activated``), returns ``(subscription, created)``
        for each, as saved, at the cost of three more queries.
        """
        from django.db import connection

        now = timezone.now()
        rows = [
            HubSubscription(
                topic=grant.topic,
                callback=grant.callback,
                secret=grant.secret,
                lease_seconds=grant.lease,
                expires_at=now + datetime.timedelta(seconds=grant.lease),
                verified_at=now,
                failures=0,
                diagnostics_key=diagnostics.lookup_key(grant.topic, grant.callback),
            )
            for grant in grants
        ]
        pairs = [(grant.topic, grant.callback) for grant in grants]
        existing = set(self.of_pairs(pairs).values_list("pk", flat=True)) if with_rows else set()
        targeted = connection.features.supports_update_conflicts_with_target
        self.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["topic", "callback"] if targeted else None,
            update_fields=["secret", "lease_seconds", "expires_at", "verified_at", "failures"],
        )
        if not with_rows:
            return []
        return [(row, row.pk not in existing) for row in self.of_pairs(pairs).order_by("pk")]


class HubSubscription(models.Model):
    """A verified subscription: (topic, callback) with its lease and secret (H-6)."""

    topic = models.URLField(_("topic"), max_length=2048)
    callback = models.URLField(_("callback"), max_length=2048)
    secret = models.CharField(_("secret"), max_length=200, blank=True)
    lease_seconds = models.PositiveIntegerField(_("lease (seconds)"))
    expires_at = models.DateTimeField(_("lease ends"), db_index=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    verified_at = models.DateTimeField(_("last verified"), default=timezone.now)
    failures = models.PositiveIntegerField(_("failed attempts"), default=0)
    # Finds the row of a diagnostics URL in one indexed query (django_push.diagnostics).
    diagnostics_key = models.CharField(
        _("diagnostics key"), max_length=32, blank=True, editable=False, db_index=True
    )

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        verbose_name = _("hub subscription")
        verbose_name_plural = _("hub subscriptions")
        constraints = [
            models.UniqueConstraint(
                fields=["topic", "callback"], name="push_hub_unique_topic_callback"
            )
        ]
        indexes = [
            models.Index(fields=["topic", "expires_at"], name="push_hub_topic_lease"),
            # A fan-out reads the next range of a topic's subscriptions by id.
            models.Index(fields=["topic", "id"], name="push_hub_topic_id"),
        ]

    def __str__(self) -> str:
        return f"{self.callback} ← {self.topic}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.diagnostics_key = diagnostics.lookup_key(self.topic, self.callback)
        super().save(*args, **kwargs)

    @property
    def is_active(self) -> bool:
        """Whether the lease has not ended yet."""
        return self.expires_at > timezone.now()

    def last_delivered_at(self) -> datetime.datetime | None:
        """When a content last reached this subscription (2xx). Not stored: a write per
        delivery is what the fan-out by ranges avoids. Read from the ranges that held it
        and did not leave it a delivery row, and from its retries delivered; as old as the
        contents pruning keeps."""
        left_a_row = Delivery.objects.filter(
            content=models.OuterRef("content"), subscription_id=self.pk
        )
        by_range = (
            Span.objects.filter(
                content__topic=self.topic,
                first__lte=self.pk,
                last__gte=self.pk,
                status=Span.Status.DONE,
                finished_at__gte=self.created_at,
            )
            .exclude(models.Exists(left_a_row))
            .aggregate(at=models.Max("finished_at"))["at"]
        )
        by_retry = self.deliveries.filter(status=Delivery.Status.DELIVERED).aggregate(
            at=models.Max("delivered_at")
        )["at"]
        return max((at for at in (by_range, by_retry) if at is not None), default=None)


class ClaimableQuerySet(models.QuerySet[_Row]):
    """Rows that wait for one worker: a worker claims one for ``PUSH_HUB_CLAIM_SECONDS``."""

    received_field: str  # when the row was made

    def pending(self) -> Self:
        return self.filter(status="pending")

    def claim_one(self, pk: int) -> bool:
        """Claim the row ``pk`` of this queryset for ``PUSH_HUB_CLAIM_SECONDS``; False if it
        is no longer in it (finished, or claimed by a live worker). One UPDATE: no race."""
        return claim_row(self, pk)

    def claimable(self) -> Self:
        """Pending, and not claimed by a live worker."""
        return self.pending().filter(_unclaimed())

    def stale(self) -> Self:
        """Claimable and known to no live task: its worker died, or its task was lost."""
        made_before = models.Q(**{f"{self.received_field}__lt": forgotten_before()})
        return self.claimable().filter(models.Q(claimed_until__isnull=False) | made_before)

    def finished_before(self, cutoff: datetime.datetime) -> Self:
        """Decided, and made before ``cutoff``: what the sweep prunes."""
        return self.filter(**{f"{self.received_field}__lt": cutoff}).exclude(status="pending")


class IntentQuerySet(ClaimableQuerySet["Intent"]):
    received_field = "created_at"

    def task_coming(self) -> bool:
        """Whether a verification task was enqueued and has not started yet: when it starts,
        it verifies every intent committed before, until none is claimable. (A mark older
        than a claim is not trusted: its task may have been lost.)

        Every subscribe request asks this: it is SQL written once (the ORM's compilation of
        the statement cost more than running it, in the endpoint's profile)."""
        table = connections[self.db].ops.quote_name(Intent._meta.db_table)
        sql = f"SELECT 1 FROM {table} WHERE queued_at > %s LIMIT 1"  # noqa: S608  # a table name
        with connections[self.db].cursor() as cursor:
            cursor.execute(sql, [forgotten_before()])
            return cursor.fetchone() is not None

    def task_queued(self, pk: int) -> None:
        """Mark the intent ``pk`` as the one a verification task was just enqueued for."""
        self.filter(pk=pk).update(queued_at=timezone.now())

    def task_started(self) -> None:
        """A verification task starts: no task is coming any more until one is enqueued."""
        self.filter(queued_at__isnull=False).update(queued_at=None)

    def claim(self, limit: int, token: str) -> int:
        """Claim up to ``limit`` claimable rows of these for ``PUSH_HUB_CLAIM_SECONDS`` under
        ``token``, skipping rows another transaction holds; returns how many. Call it in a
        transaction."""
        pks = locked_pks(self.claimable(), limit)
        # Claimable is checked again in the UPDATE: SQLite has no row locks.
        return (
            Intent.objects.claimable()
            .filter(pk__in=pks)
            .update(claimed_until=claim_until(), claim=token)
        )

    def claimed(self, token: str) -> Self:
        """Still pending under the claim ``token``: an expired claim may have been taken over."""
        return self.pending().filter(claim=token)

    def decide(self, status: str, reasons: dict[int, str]) -> int:
        """Decide the verifications ``reasons`` names by pk, all with ``status``, each with its
        reason, in one UPDATE; returns how many."""
        distinct = set(reasons.values())
        reason: models.Value | models.Case = (
            models.Value(distinct.pop())
            if len(distinct) == 1
            else models.Case(
                *(models.When(pk=pk, then=models.Value(why)) for pk, why in reasons.items())
            )
        )
        return self.filter(pk__in=reasons).update(
            status=status, reason=reason, finished_at=timezone.now(), claimed_until=None
        )

    def crowding(self, callback: str, holds: Callable[[], bool] = lambda: False) -> str:
        """Why a new verification to ``callback`` must wait ("" when it need not): each one
        is a GET the hub sends for a stranger, so their number is capped per callback
        registrable domain (``PUSH_HUB_MAX_PENDING_PER_HOST``) and in total
        (``PUSH_HUB_MAX_PENDING``). ``holds()``, asked only when the total is reached, says
        whether the request is about a pair the hub holds: a renewal or an unsubscription
        is never refused by the total, which strangers can fill."""
        from django_push.conf import conf
        from django_push.hub.domains import registrable_domain

        # This runs for every subscribe request: one statement for both counts, each
        # stopping at its cap, in SQL written once (compiling the ORM's filtered aggregate
        # cost more than running it, in the endpoint's profile). Counts all pending intents.
        per_host, total = conf.PUSH_HUB_MAX_PENDING_PER_HOST, conf.PUSH_HUB_MAX_PENDING
        table = connections[self.db].ops.quote_name(Intent._meta.db_table)
        pending = f"SELECT 1 FROM {table} WHERE status = 'pending'"  # noqa: S608  # a table name
        sql = (
            f"SELECT (SELECT COUNT(*) FROM ({pending} AND callback_host = %s LIMIT %s) host),"  # noqa: S608
            f" (SELECT COUNT(*) FROM ({pending} LIMIT %s) total)"
        )
        with connections[self.db].cursor() as cursor:
            cursor.execute(sql, [registrable_domain(callback), per_host, total])
            row = cursor.fetchone()
        if row[0] >= per_host:
            return f"{per_host} pending verifications for this callback domain already"
        if row[1] >= total and not holds():
            return f"{total} pending verifications already"
        return ""

    def unsubscribes_nothing(self, topic: str, callback: str) -> bool:
        """An unsubscribe of a pair the hub neither holds nor is verifying: nothing to
        verify, so no GET to a callback that may never have asked for anything."""
        pair = {"topic": topic, "callback": callback}
        held = HubSubscription.objects.filter(**pair).exists()
        return not held and not self.pending().filter(mode="subscribe", **pair).exists()


class Intent(models.Model):
    """A subscribe or unsubscribe request waiting for verification of intent (5.3)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        VERIFIED = "verified", _("verified")
        FAILED = "failed", _("failed")
        DENIED = "denied", _("denied")

    mode = models.CharField(_("mode"), max_length=12)
    topic = models.URLField(_("topic"), max_length=2048)
    callback = models.URLField(_("callback"), max_length=2048)
    callback_host = models.CharField(_("callback host"), max_length=255, blank=True)
    secret = models.CharField(_("secret"), max_length=200, blank=True)
    lease_seconds = models.PositiveIntegerField(_("lease asked"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    reason = models.TextField(_("outcome"), blank=True)
    created_at = models.DateTimeField(_("received"), auto_now_add=True)
    claimed_until = models.DateTimeField(_("claimed until"), null=True, blank=True)
    claim = models.CharField(_("claimed by batch"), max_length=32, blank=True, db_index=True)
    queued_at = models.DateTimeField(_("task enqueued"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    objects = IntentQuerySet.as_manager()

    class Meta:
        verbose_name = _("verification of intent")
        verbose_name_plural = _("verifications of intent")
        indexes = [
            models.Index(
                fields=["callback_host"],
                name="push_hub_intent_pending",
                condition=models.Q(status="pending"),
            ),
            # The endpoint's "is a task already coming?" (IntentQuerySet.task_coming).
            models.Index(
                fields=["queued_at"],
                name="push_hub_intent_queued",
                condition=models.Q(queued_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.mode} {self.callback} → {self.topic}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        from django_push.hub.domains import registrable_domain

        # What the caps count (crowding()): the registrable domain, not the host name.
        self.callback_host = registrable_domain(self.callback)
        super().save(*args, **kwargs)


class ContentQuerySet(models.QuerySet["Content"]):
    def latest_of(self, topic: str) -> Content | None:
        """The version of ``topic`` stored last: what its subscribers were sent."""
        return self.filter(topic=topic).order_by("-pk").first()

    def open(self) -> ContentQuerySet:
        """Contents whose fan-out has ranges left to hand out (partial index)."""
        return self.filter(finished_at__isnull=True, cursor__lt=models.F("upto"))

    def stale(self) -> ContentQuerySet:
        """Open contents no live fan-out is moving: nobody claimed a range of it for longer
        than a claim lasts (its task was lost, or its worker died before the first claim)."""
        since = Coalesce("claimed_at", "fetched_at")
        return self.open().alias(since=since).filter(since__lt=forgotten_before())

    def with_counts(self) -> ContentQuerySet:
        """Annotate ``n_delivered``, ``n_pending`` and ``n_failed`` (gave up) of each content:
        sums over its ranges plus its delivery rows, never a scan of subscribers."""
        spans = Span.objects.filter(content=models.OuterRef("pk")).values("content")
        rows = Delivery.objects.filter(content=models.OuterRef("pk")).values("content")

        def total(queryset: models.QuerySet[Any], expression: Any) -> models.Func:
            summed = queryset.annotate(n=expression).values("n")
            return Coalesce(models.Subquery(summed, output_field=models.BigIntegerField()), 0)

        def count(status: str) -> models.Func:
            return total(rows.filter(status=status), models.Count("pk"))

        sent = total(spans, models.Sum("delivered"))
        done = spans.filter(status=Span.Status.DONE)
        decided = total(done, models.Sum(models.F("delivered") + models.F("failed")))
        # Not sent yet: what the plan owes beyond its decided ranges, while it is running.
        unsent = models.Case(
            models.When(
                finished_at__isnull=True,
                then=Greatest(models.F("owed") - decided, 0),
            ),
            default=0,
        )
        return self.annotate(
            n_delivered=sent + count(Delivery.Status.DELIVERED),
            n_pending=unsent + count(Delivery.Status.PENDING),
            n_failed=count(Delivery.Status.FAILED),
        )


class Content(models.Model):
    """One fetched version of a topic, stored once whatever the number of subscribers, and
    its fan-out plan: it owes the topic's subscriptions with ``id <= upto`` that are still
    active when their range is sent; ranges up to ``cursor`` have been handed out."""

    topic = models.URLField(_("topic"), max_length=2048, db_index=True)
    body = models.BinaryField(_("body"))
    content_type = models.CharField(_("content type"), max_length=255, blank=True)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    hub_url = models.URLField(_("hub URL"), max_length=2048)
    fetched_at = models.DateTimeField(_("fetched"), auto_now_add=True)
    # With PUSH_HUB_FEED_DIFFS: the feed's head and its new entries, delivered instead of
    # the body; ``body`` stays whole for the next comparison.
    feed_diff = models.BinaryField(_("feed diff"), null=True, blank=True)
    # The topic's validators as last fetched with this body (PUSH_HUB_CONDITIONAL_FETCH);
    # empty for a direct publish, so the next fetch is unconditional.
    etag = models.CharField(_("ETag"), max_length=1024, blank=True)
    last_modified = models.CharField(_("Last-Modified"), max_length=64, blank=True)
    # With PUSH_HUB_SEQUENCE_HEADER: the topic's number of this content (TopicSequence).
    sequence = models.PositiveBigIntegerField(_("sequence number"), null=True, blank=True)
    upto = models.BigIntegerField(_("owed up to subscription"), default=0)
    cursor = models.BigIntegerField(_("handed out up to subscription"), default=0)
    owed = models.PositiveIntegerField(_("subscribers owed"), default=0)
    claimed_at = models.DateTimeField(_("last range claimed"), null=True, blank=True)
    finished_at = models.DateTimeField(_("fan-out finished"), null=True, blank=True)

    objects = ContentQuerySet.as_manager()

    class Meta:
        verbose_name = _("published content")
        verbose_name_plural = _("published contents")
        ordering = ["-fetched_at"]
        indexes = [
            models.Index(
                fields=["fetched_at"],
                name="push_hub_content_open",
                condition=models.Q(finished_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.topic} @ {self.fetched_at:%Y-%m-%d %H:%M:%S}"

    @property
    def delivered_body(self) -> bytes:
        """What subscribers are sent: the feed diff when there is one, else the body."""
        return bytes(self.body if self.feed_diff is None else self.feed_diff)

    @property
    def delivery_id(self) -> str:
        """Identity of this content's deliveries (``Push-Delivery-Id``): the same on every
        retry, different for every stored content of this hub, even a body seen before."""
        key = f"{self.hub_url}\n{self.pk}\n{self.sha256}".encode()
        return hashlib.sha256(key).hexdigest()[:32]

    def plan(self, *, owe: bool = True) -> int:
        """Owe this content to the topic's active subscriptions as of now (none unless
        ``owe``): set ``upto`` and ``owed``, restart the cursor. Returns how many are owed.
        One aggregate over the index ``push_hub_topic_lease``; call it in a transaction."""
        figures = {"owed": 0, "upto": 0}
        if owe:
            active = HubSubscription.objects.active().filter(topic=self.topic)
            figures = active.aggregate(owed=models.Count("pk"), upto=models.Max("pk"))
        self.owed, self.upto = figures["owed"], figures["upto"] or 0
        self.cursor, self.claimed_at = 0, None
        self.finished_at = None if self.owed else timezone.now()
        return self.owed

    def finish_if_done(self) -> bool:
        """Mark the fan-out finished once every range is handed out and decided; True if this
        call did. The content's row is locked first: two workers deciding its last two
        ranges at once would each see the other's still pending, and neither finish it."""
        left = Span.objects.filter(content=models.OuterRef("pk"), status=Span.Status.PENDING)
        handed_out = Content.objects.filter(
            pk=self.pk, finished_at__isnull=True, cursor__gte=models.F("upto")
        )
        with transaction.atomic():
            if not handed_out.select_for_update().exists():
                return False
            return bool(handed_out.exclude(models.Exists(left)).update(finished_at=timezone.now()))


class TopicSequenceQuerySet(models.QuerySet["TopicSequence"]):
    def bump(self, topic: str) -> int:
        """The next number of ``topic``: one UPDATE (one INSERT the first time), whose row
        lock orders the publishes of one topic until the caller's transaction commits."""
        with transaction.atomic():
            if not self.filter(topic=topic).update(last=models.F("last") + 1):
                self.bulk_create([TopicSequence(topic=topic, last=0)], ignore_conflicts=True)
                self.filter(topic=topic).update(last=models.F("last") + 1)
            return int(self.filter(topic=topic).values_list("last", flat=True).get())


class TopicSequence(models.Model):
    """The last sequence number given to a content of ``topic``. One counter per topic, not
    per subscription: a content is owed to all of a topic's subscriptions at once, so each
    of them sees the numbers follow each other (from the first content it is owed)."""

    topic = models.URLField(_("topic"), max_length=2048, unique=True)
    last = models.PositiveBigIntegerField(_("last number"), default=0)

    objects = TopicSequenceQuerySet.as_manager()

    class Meta:
        verbose_name = _("topic sequence")
        verbose_name_plural = _("topic sequences")

    def __str__(self) -> str:
        return f"{self.topic}: {self.last}"


class SpanQuerySet(models.QuerySet["Span"]):
    def stale(self) -> SpanQuerySet:
        """Ranges whose claim expired before they were decided: their worker died."""
        return self.filter(status=Span.Status.PENDING, claimed_until__lt=timezone.now())


class Span(models.Model):
    """One range of a content's fan-out: the active subscriptions of its topic with ids
    ``first`` to ``last``, claimed by one worker, then decided with counts. Only the
    subscriptions that did not answer 2xx become ``Delivery`` rows."""

    class Status(models.TextChoices):
        PENDING = "pending", _("sending")
        DONE = "done", _("done")

    content = models.ForeignKey(Content, on_delete=models.CASCADE, related_name="spans")
    first = models.BigIntegerField(_("first subscription"))
    last = models.BigIntegerField(_("last subscription"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    claim = models.CharField(_("claimed by batch"), max_length=32, db_index=True)
    claimed_until = models.DateTimeField(_("claimed until"), null=True, blank=True)
    delivered = models.PositiveIntegerField(_("delivered"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    objects = SpanQuerySet.as_manager()

    class Meta:
        verbose_name = _("range of a fan-out")
        verbose_name_plural = _("ranges of fan-outs")
        indexes = [
            models.Index(
                fields=["claimed_until"],
                name="push_hub_span_sending",
                condition=models.Q(status="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.content_id}: subscriptions {self.first}-{self.last} ({self.status})"


NO_SUBSCRIBER = "no active subscriber"


class PingQuerySet(ClaimableQuerySet["Ping"]):
    received_field = "received_at"

    def due(self) -> Self:
        """Claimable, and not waiting for a retry of its fetch."""
        return self.claimable().filter(next_attempt_at__lte=timezone.now())

    def stale(self) -> Self:
        """Due and known to no live task: its worker died, its task was lost, or it waits
        for a retry (the immediate backend cannot defer the retry's task)."""
        made_before = models.Q(received_at__lt=forgotten_before())
        retry = models.Q(attempts__gt=0)
        return self.due().filter(models.Q(claimed_until__isnull=False) | retry | made_before)

    def receive(self, topics: list[str], hub_url: str) -> list[Ping]:
        """Record a publish request; returns the pings whose fetch must be enqueued.

        A topic whose fetch is still waiting to start is fetched once for all its pings
        (coalesced); a topic with no active subscriber is counted as skipped (the
        ``django_push_hub_publishes_total{outcome="skipped"}`` metric), never stored: a
        publish of topics nobody follows costs no row, however often it is sent.
        """
        pending = set(self.claimable().filter(topic__in=topics).values_list("topic", flat=True))
        followed = HubSubscription.objects.followed(topics)
        fetch, skipped = [], 0
        for topic in topics:
            if topic in pending:
                continue
            if topic in followed:
                fetch.append(self.create(topic=topic, hub_url=hub_url))
            else:
                skipped += 1
        if skipped:
            metrics.count_publish("skipped", skipped)
        return fetch


class Ping(models.Model):
    """A publish request for one topic, kept until the topic has been fetched.

    The task queue only triggers the fetch: a worker that dies while fetching leaves the
    ping pending, and the sweeper enqueues it again once its claim has expired.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        FETCHED = "fetched", _("fetched")
        UNCHANGED = "unchanged", _("unchanged")
        SKIPPED = "skipped", _("no subscriber")
        FAILED = "failed", _("fetch failed")

    topic = models.URLField(_("topic"), max_length=2048)
    hub_url = models.URLField(_("hub URL"), max_length=2048)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    reason = models.TextField(_("outcome"), blank=True)
    content = models.ForeignKey(
        "Content", on_delete=models.SET_NULL, null=True, blank=True, related_name="pings"
    )
    received_at = models.DateTimeField(_("received"), auto_now_add=True)
    claimed_until = models.DateTimeField(_("claimed until"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("fetch attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    first_failure_at = models.DateTimeField(_("first failure"), null=True, blank=True)

    objects = PingQuerySet.as_manager()

    class Meta:
        verbose_name = _("publish request")
        verbose_name_plural = _("publish requests")
        indexes = [
            models.Index(
                fields=["received_at"],
                name="push_hub_ping_pending",
                condition=models.Q(status="pending"),
            ),
            # A topic's last fetch, for its diagnostics page.
            models.Index(fields=["topic", "received_at"], name="push_hub_ping_topic"),
        ]

    def __str__(self) -> str:
        return f"publish {self.topic}: {self.status}"

    def _finish(self, status: str, reason: str = "", content: Content | None = None) -> None:
        self.status, self.reason, self.content = status, reason, content
        self.finished_at = timezone.now()
        self.claimed_until = None
        self.save()

    def fetched(self, content: Content) -> None:
        self._finish(self.Status.FETCHED, content=content)

    def unchanged(self, content: Content, reason: str = "same SHA-256 as the last content") -> None:
        """The topic's body equals the content last stored for it (or the topic answered
        304 Not Modified): nothing to deliver."""
        self._finish(self.Status.UNCHANGED, reason, content)

    def skip(self, reason: str = NO_SUBSCRIBER) -> None:
        self._finish(self.Status.SKIPPED, reason)

    def fail(self, reason: str, *, transient: bool) -> datetime.datetime | None:
        """Record a failed fetch; returns when to try again, or ``None`` once given up.

        A transient failure (5xx, timeout, connection error) is retried with the deliveries'
        back-off until ``PUSH_HUB_RETRY_HORIZON`` after the first failure; any other is final.
        """
        from django_push.hub import retry

        now = timezone.now()
        self.attempts += 1
        self.first_failure_at = self.first_failure_at or now
        retry_at = retry.next_attempt(self.attempts, self.first_failure_at, now)
        if not transient or retry_at is None:
            self._finish(self.Status.FAILED, reason)
            return None
        self.reason, self.next_attempt_at, self.claimed_until = reason, retry_at, None
        self.save()
        return retry_at


class DeliveryQuerySet(models.QuerySet["Delivery"]):
    def deliver(self, status: int, now: datetime.datetime) -> int:
        """Mark these deliveries delivered with the 2xx ``status`` the callback answered, and
        their subscriptions healthy again; returns how many."""
        HubSubscription.objects.filter(
            pk__in=self.values("subscription_id"), failures__gt=0
        ).update(failures=0)
        return self.update(
            status=Delivery.Status.DELIVERED,
            delivered_at=now,
            claimed_until=None,
            claim="",
            attempts=models.F("attempts") + 1,
            last_status=status,
        )

    def due(self) -> DeliveryQuerySet:
        """Pending, due now, and not claimed by a live worker."""
        now = timezone.now()
        return self.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now).filter(
            _unclaimed(now)
        )

    def stale(self) -> DeliveryQuerySet:
        """Due deliveries that no queued task is known to cover: expired claims (a worker
        died), retries, and work left unclaimed for longer than a claim lasts (a lost task)."""
        return self.due().filter(
            models.Q(claimed_until__isnull=False)
            | models.Q(attempts__gt=0)
            | models.Q(next_attempt_at__lt=forgotten_before())
        )

    def claim(self, limit: int, token: str) -> int:
        """Claim up to ``limit`` of these rows for ``PUSH_HUB_CLAIM_SECONDS`` under ``token``,
        skipping rows another transaction holds; returns how many. Call it in a transaction."""
        pks = locked_pks(self, limit)
        return Delivery.objects.filter(pk__in=pks).update(claimed_until=claim_until(), claim=token)

    def next_retry(self) -> datetime.datetime | None:
        """When the next retry of a failed delivery, or of one held by a breaker, is due
        (``None`` when none waits)."""
        later = models.Q(attempts__gt=0) | models.Q(next_attempt_at__gt=timezone.now())
        waiting = self.filter(later, status=Delivery.Status.PENDING)
        return waiting.order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()

    def hold(self, until: datetime.datetime, now: datetime.datetime) -> int:
        """Put these claimed rows off until ``until`` (their host's breaker is open) and
        release them, without counting an attempt: their first failure moves on by as long,
        so the time held does not count against ``PUSH_HUB_RETRY_HORIZON``."""
        return self.update(
            next_attempt_at=until,
            first_failure_at=models.F("first_failure_at") + (until - now),
            claimed_until=None,
            claim="",
        )

    def gave_up(self) -> DeliveryQuerySet:
        """Deliveries the hub stopped retrying (past ``PUSH_HUB_RETRY_HORIZON``)."""
        return self.filter(status=Delivery.Status.FAILED)

    def send_again(self) -> int:
        """Make these delivered or given-up rows pending and due now, with a fresh retry
        schedule (attempts and first failure cleared; the last status and error stay until
        the next attempt). Pending rows are left alone: they are owed already. Returns how many.
        """
        return self.exclude(status=Delivery.Status.PENDING).update(
            status=Delivery.Status.PENDING,
            attempts=0,
            first_failure_at=None,
            next_attempt_at=timezone.now(),
            claimed_until=None,
            claim="",
        )

    def obsolete(self) -> DeliveryQuerySet:
        """Retries that a newer content of their topic supersedes: its plan owes it to the
        same subscription, which has received it, will receive it, or waits for its retry
        instead. A feed diff neither supersedes nor is superseded (each holds other entries),
        and a delivery not tried yet (sent again on purpose) is left alone, unless a breaker
        held it."""
        newer = Content.objects.filter(
            topic=models.OuterRef("content__topic"),
            pk__gt=models.OuterRef("content_id"),
            upto__gte=models.OuterRef("subscription_id"),
            feed_diff__isnull=True,
        )
        retries = self.filter(_waiting(), status=Delivery.Status.PENDING)
        return retries.filter(content__feed_diff__isnull=True).filter(models.Exists(newer))

    def owe_held(
        self,
        content_id: int,
        subscription_ids: list[int],
        until: datetime.datetime,
        error: str,
    ) -> None:
        """Owe the content ``content_id`` to these subscriptions, held by a breaker until
        ``until`` with ``error`` (a first attempt, not tried). A subscription that waits
        with a held row of an older content already has that row moved to this one (the
        newer supersedes it, as :meth:`obsolete` says; neither is a feed diff); the others
        get a row. So while a breaker stays open, each publish updates its host's rows.

        Two statements whatever the count, in SQL written here: in the breaker benchmark's
        profile, compiling the ORM's statements and making its instances cost more than
        the writes. The caller makes sure the subscriptions exist (and locks them). On the
        whole table: call it on ``Delivery.objects``."""
        _whole_table(self)
        if not subscription_ids:
            return
        from django_push.hub.breakers import HELD

        connection = connections[self.db]
        quote = connection.ops.quote_name
        table, content, subscription = (
            quote(model._meta.db_table) for model in (Delivery, Content, HubSubscription)
        )
        ids = ", ".join(["%s"] * len(subscription_ids))
        diff = f"SELECT 1 FROM {content} c WHERE c.feed_diff IS NOT NULL AND c.id ="  # noqa: S608
        move = (
            f"UPDATE {table} SET content_id = %s, next_attempt_at = %s, last_error = %s "  # noqa: S608
            f"WHERE id IN (SELECT MIN(o.id) FROM {table} o WHERE o.subscription_id IN ({ids}) "
            "AND o.status = 'pending' AND o.attempts = 0 AND o.last_error LIKE %s "
            "AND o.content_id < %s AND (o.claimed_until IS NULL OR o.claimed_until < %s) "
            f"AND NOT EXISTS ({diff} o.content_id) GROUP BY o.subscription_id) "
            f"AND NOT EXISTS ({diff} %s)"
        )
        add = (
            f"INSERT INTO {table} (content_id, subscription_id, status, attempts, "  # noqa: S608
            f"next_attempt_at, claim, last_error) SELECT %s, s.id, 'pending', 0, %s, '', %s "
            f"FROM {subscription} s WHERE s.id IN ({ids}) AND NOT EXISTS (SELECT 1 FROM "
            f"{table} o WHERE o.subscription_id = s.id AND o.content_id = %s "
            "AND o.status = 'pending')"
        )
        adapt = connection.ops.adapt_datetimefield_value
        held, now = HELD.split("{")[0] + "%", adapt(timezone.now())
        values = [content_id, adapt(until), error]
        with connection.cursor() as cursor:
            cursor.execute(move, [*values, *subscription_ids, held, content_id, now, content_id])
            cursor.execute(add, [*values, *subscription_ids, content_id])

    def untried(self) -> DeliveryQuerySet:
        """Due deliveries never tried: owed on subscribe, or sent again."""
        return self.due().filter(attempts=0)

    def owe_latest(self, subscriptions: Iterable[HubSubscription]) -> int:
        """Owe each of these new subscriptions the content of its topic stored last, due
        now (``PUSH_HUB_SEND_LATEST_ON_SUBSCRIBE``); returns how many are owed. One query
        per topic, one INSERT."""
        latest: dict[str, Content | None] = {}
        rows = []
        for subscription in subscriptions:
            if subscription.topic not in latest:
                latest[subscription.topic] = Content.objects.latest_of(subscription.topic)
            content = latest[subscription.topic]
            if content is not None:
                rows.append(Delivery(content=content, subscription=subscription))
        return len(self.bulk_create(rows))

    def retrying(self) -> bool:
        """Whether any delivery waits for a retry, or for a breaker (the partial index of
        pending rows)."""
        return self.filter(_waiting(), status=Delivery.Status.PENDING).exists()

    def drop_obsolete(self) -> int:
        """Delete the obsolete ones of these; returns how many."""
        return int(self.obsolete().delete()[1].get(Delivery._meta.label, 0))

    def drop_obsolete_between(self, first: int, last: int) -> int:
        """:meth:`drop_obsolete` of the rows of the subscriptions ``first`` to ``last`` (by
        pk), after each range the fan-out records; returns how many. Its statement is
        compiled once per database, then reused: compiling it cost more than running it.
        On the whole table: call it on ``Delivery.objects``."""
        _whole_table(self)
        key = self.db
        if key not in _DROP_BETWEEN:
            between = {"subscription_id__gte": _FIRST, "subscription_id__lte": _LAST}
            query = Delivery.objects.using(key).filter(**between).obsolete().values("pk").query
            sql, params = query.get_compiler(using=key).as_sql()
            if list(params).count(_FIRST) != 1 or list(params).count(_LAST) != 1:
                raise RuntimeError(f"unexpected parameters: {params}")  # pragma: no cover
            table = connections[key].ops.quote_name(Delivery._meta.db_table)
            _DROP_BETWEEN[key] = (f"DELETE FROM {table} WHERE id IN ({sql})", list(params))  # noqa: S608
        sql, params = _DROP_BETWEEN[key]
        values = {_FIRST: first, _LAST: last}
        with connections[key].cursor() as cursor:
            cursor.execute(sql, [values.get(p, p) if isinstance(p, int) else p for p in params])
            return max(int(cursor.rowcount), 0)


def _whole_table(queryset: models.QuerySet[Any]) -> None:
    """Refuse a filtered queryset for a statement that would not apply its filters."""
    if queryset.query.has_filters():
        raise TypeError("this method works on the whole table: call it on the manager")


# drop_obsolete_between's statement per database, compiled with these in place of its bounds.
_DROP_BETWEEN: dict[str, tuple[str, list[Any]]] = {}
_FIRST, _LAST = -7_340_011, -7_340_017


class Delivery(models.Model):
    """Content owed to one subscription, and what happened when it was sent."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        DELIVERED = "delivered", _("delivered")
        FAILED = "failed", _("gave up")

    content = models.ForeignKey(Content, on_delete=models.CASCADE, related_name="deliveries")
    subscription = models.ForeignKey(
        HubSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    claimed_until = models.DateTimeField(_("claimed until"), null=True, blank=True)
    claim = models.CharField(_("claimed by batch"), max_length=32, blank=True, db_index=True)
    first_failure_at = models.DateTimeField(_("first failure"), null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(_("last HTTP status"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="push_hub_delivery_due",
                condition=models.Q(status="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.content_id} → {self.subscription_id}: {self.status}"

    def fail(self, status: int | None, error: str, now: datetime.datetime) -> bool:
        """Record a failed attempt and release the claim: retry with back-off, or give up
        once the retry would fall beyond ``PUSH_HUB_RETRY_HORIZON``. True if it gave up."""
        from django_push.hub import retry

        self.attempts += 1
        self.first_failure_at = self.first_failure_at or now
        self.last_status, self.last_error = status, error or f"HTTP {status}"
        self.claimed_until, self.claim = None, ""
        retry_at = retry.next_attempt(self.attempts, self.first_failure_at, now)
        if retry_at is None:
            self.status = self.Status.FAILED
        else:
            self.next_attempt_at = retry_at
        self.save()
        HubSubscription.objects.filter(pk=self.subscription_id).update(
            failures=models.F("failures") + 1
        )
        return retry_at is None


def _waiting() -> models.Q:
    """Rows waiting to be sent again: retries, and first attempts a breaker held."""
    from django_push.hub.breakers import HELD

    return models.Q(attempts__gt=0) | models.Q(last_error__startswith=HELD.split("{")[0])


def _unclaimed(now: datetime.datetime | None = None) -> models.Q:
    now = now or timezone.now()
    return models.Q(claimed_until__isnull=True) | models.Q(claimed_until__lt=now)


def forgotten_before() -> datetime.datetime:
    """Work made before this and never claimed has outlived any claim: no live task holds
    it, so its task was lost and the sweeper enqueues it again."""
    from django_push.conf import conf

    return timezone.now() - datetime.timedelta(seconds=conf.PUSH_HUB_CLAIM_SECONDS)


def claim_row(queryset: models.QuerySet[Any], pk: int) -> bool:
    """Claim the row ``pk`` of ``queryset`` for ``PUSH_HUB_CLAIM_SECONDS``; False if it is
    no longer in it (finished, or claimed by a live worker). One UPDATE: no race."""
    return bool(queryset.filter(pk=pk).update(claimed_until=claim_until()))


def claim_until() -> datetime.datetime:
    """When a claim made now expires and the sweeper may give the work to another worker."""
    from django_push.conf import conf

    return timezone.now() + datetime.timedelta(seconds=conf.PUSH_HUB_CLAIM_SECONDS)


def locked_pks(queryset: models.QuerySet[Any], limit: int) -> list[int]:
    """The first ``limit`` primary keys of ``queryset``, their rows locked for this
    transaction, skipping rows another transaction holds (no lock at all on SQLite)."""
    return list(
        queryset.select_for_update(skip_locked=True, of=("self",))
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


def lease_end(seconds: int) -> datetime.datetime:
    return timezone.now() + datetime.timedelta(seconds=seconds)


def host_of(url: str) -> str:
    """The host name of ``url``, lower-cased, as the caps on verifications count it."""
    try:
        return (urlsplit(url).hostname or "")[:255]
    except ValueError:
        return ""


class UsedPublishSignatureQuerySet(models.QuerySet["UsedPublishSignature"]):
    def newer_than(self, topic: str, signed_at: datetime.datetime) -> Self:
        """Direct publishes of ``topic`` signed after ``signed_at``."""
        return self.filter(topic=topic, signed_at__gt=signed_at)

    def signed_before(self, cutoff: datetime.datetime) -> Self:
        return self.filter(signed_at__lt=cutoff)

    def prune(self, cutoff: datetime.datetime) -> int:
        """Forget the signatures of direct publishes signed before ``cutoff`` (the sweep);
        returns how many. Those of the last ``SIGNED_PUBLISH_MAX_AGE`` seconds are kept
        whatever ``cutoff`` says: they could still be replayed."""
        keep = timezone.now() - datetime.timedelta(seconds=SIGNED_PUBLISH_MAX_AGE + 1)
        count, _ = self.signed_before(min(cutoff, keep)).delete()
        return count


# Seconds a signed direct publish stays valid, either side of the hub's clock.
SIGNED_PUBLISH_MAX_AGE = 300


class UsedPublishSignature(models.Model):
    """A direct publish the hub accepted. Its signature is spent, in every process (the
    unique constraint), and a request of its topic signed earlier is refused."""

    signature = models.CharField(_("signature"), max_length=64, unique=True)
    topic = models.URLField(_("topic"), max_length=2048)
    signed_at = models.DateTimeField(_("signed at"))

    objects = UsedPublishSignatureQuerySet.as_manager()

    class Meta:
        verbose_name = _("used publish signature")
        verbose_name_plural = _("used publish signatures")
        indexes = [models.Index(fields=["topic", "signed_at"], name="push_hub_usedsig_topic")]

    def __str__(self) -> str:
        return f"{self.topic} @ {self.signed_at:%Y-%m-%d %H:%M:%S}"


# Defined in its own module; imported here so that Django registers it with the app.
from django_push.hub.breakers import HostBreaker  # noqa: E402, F401
from django_push.hub.heartbeat import Heartbeat  # noqa: E402, F401
