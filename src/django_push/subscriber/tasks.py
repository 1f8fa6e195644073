"""Background work of the subscriber: requests to hubs and lease renewal."""

from __future__ import annotations

import datetime
import logging

from django.utils import timezone

from django_push.conf import conf
from django_push.subscriber import heartbeat, renewal
from django_push.subscriber.models import Subscription
from django_push.tasks import enqueue, task

logger = logging.getLogger("django_push.subscriber")


@task()
def subscribe_task(pk: int, lease_seconds: int | None = None) -> int | None:
    """Send the subscription request of row ``pk``; a refusal fails the task."""
    subscription = Subscription.objects.filter(pk=pk).first()
    if subscription is None:
        logger.warning("Subscription %s vanished before its request was sent", pk)
        return None
    return subscription.subscribe(lease_seconds).status


@task()
def unsubscribe_task(pk: int) -> int | None:
    subscription = Subscription.objects.filter(pk=pk).first()
    if subscription is None:
        return None
    return subscription.unsubscribe().status


@task()
def unsubscribe_legacy_task(pk: int) -> None:
    """Ask the hub to drop the 1.1 callback URL of row ``pk``, which moved to a tokened one."""
    subscription = Subscription.objects.filter(pk=pk).first()
    if subscription is not None:
        subscription.unsubscribe_legacy()


def renew_expiring(within: float | None = None) -> tuple[int, int]:
    """Renew every verified subscription whose lease ends within ``within`` seconds.

    Returns ``(renewed, failed)``; failures are logged and kept in ``last_error``.
    """
    return renewal.renew_expiring(within)


@task()
def renew_leases_task(reschedule: bool = True) -> list[int]:
    """Record the renewal beat, renew expiring leases, then schedule the next run
    ``PUSH_RENEW_INTERVAL`` from now."""
    heartbeat.beat()
    renewed, failed = renew_expiring()
    logger.info("Lease renewal: %s renewed, %s failed", renewed, failed)
    if reschedule:
        run_after = timezone.now() + datetime.timedelta(seconds=conf.PUSH_RENEW_INTERVAL)
        if not enqueue(renew_leases_task, True, run_after=run_after):
            logger.warning(
                "Task backend %r cannot defer tasks: lease renewal is not rescheduled; "
                "run the renew_subscriptions command from cron instead",
                conf.PUSH_TASK_BACKEND,
            )
    return [renewed, failed]


@task()
def reconcile_task(reschedule: bool = True) -> dict[str, int]:
    """Record the renewal beat, poll the due topics (``PUSH_SUBSCRIBER_RECONCILE``), then
    schedule the next run for when the next poll falls due."""
    from django_push.subscriber.reconcile import next_run, reconcile_due

    heartbeat.beat()
    report = reconcile_due()
    if report.polled:
        logger.info("Reconciliation: %s", report)
    if reschedule:
        run_after = next_run()
        if run_after is not None and not enqueue(reconcile_task, True, run_after=run_after):
            logger.warning(
                "Task backend %r cannot defer tasks: reconciliation is not rescheduled; "
                "run the reconcile_subscriptions command from cron instead",
                conf.PUSH_TASK_BACKEND,
            )
    return dict(report.counts)


@task()
def catch_up_task(pk: int) -> dict[str, int]:
    """Fetch the topic of subscription ``pk`` once, after its verification."""
    from django_push.subscriber.reconcile import catch_up

    return dict(catch_up(pk).counts)


@task()
def poll_now_task(pk: int) -> dict[str, int]:
    """Poll the topic of subscription ``pk`` now: a delivery skipped a sequence number."""
    from django_push.subscriber.reconcile import POLL_FIELDS, reconcile

    polled = Subscription.objects.reconciled().filter(pk=pk).only(*POLL_FIELDS)
    return dict(reconcile(polled).counts)


def catch_up_on_verification(sender: object, subscription: object, **kwargs: object) -> None:
    """Receiver of ``subscription_verified``: queue the catch-up of a polled subscription."""
    from django_push.subscriber.models import Subscription

    if isinstance(subscription, Subscription) and subscription.poll_interval is not None:
        enqueue(catch_up_task, subscription.pk)
