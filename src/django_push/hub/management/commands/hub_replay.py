from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_push.hub import replay


class Command(BaseCommand):
    help = (
        "Send stored content again, without fetching the topic: a topic's latest content (or "
        "--content ID) to its active subscriptions (or those named with --subscription / "
        "--callback); or, with --gave-up, the deliveries the hub gave up on (--host to "
        "narrow them). --dry-run shows what would be sent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("topic", nargs="?", help="the topic URL, as subscribed")
        parser.add_argument("--content", type=int, help="the id of a stored content")
        parser.add_argument(
            "--subscription", type=int, action="append", default=[], help="a subscription id"
        )
        parser.add_argument("--callback", action="append", default=[], help="a callback URL")
        parser.add_argument(
            "--gave-up", action="store_true", help="retry the deliveries the hub gave up on"
        )
        parser.add_argument("--host", help="with --gave-up: only to this callback host")
        parser.add_argument("--dry-run", action="store_true", help="show, send nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["gave_up"]:
            if options["topic"] or options["content"] or options["subscription"]:
                raise CommandError("--gave-up takes no topic, --content or --subscription.")
            self.retry_gave_up(options["host"], options["dry_run"])
            return
        if options["host"]:
            raise CommandError("--host goes with --gave-up.")
        try:
            plan = replay.plan(
                replay.content_to_send(options["topic"], options["content"]),
                options["subscription"],
                options["callback"],
            )
        except replay.ReplayError as exc:
            raise CommandError(str(exc)) from None
        if options["dry_run"]:
            self.stdout.write(f"Would send {plan}.")
            return
        count = replay.execute(plan)
        self.stdout.write(f"Sending {plan}.")
        self.stdout.write(self.style.SUCCESS(f"{count} delivery(ies) queued."))

    def retry_gave_up(self, host: str | None, dry_run: bool) -> None:
        groups = replay.gave_up_by_host()
        if host is not None:
            groups = [group for group in groups if group.host == host.lower()]
            if not groups:
                raise CommandError(
                    f"No given-up delivery to host {host} (to an active subscription)."
                )
        for group in groups:
            self.stdout.write(
                f"{group.host}: {group.count} given up, last error {group.last_error!r}, "
                f"first failure {group.oldest:%Y-%m-%d %H:%M}, last attempt "
                f"{group.newest:%Y-%m-%d %H:%M}"
            )
        total = sum(group.count for group in groups)
        if dry_run:
            self.stdout.write(f"Would retry {total} delivery(ies).")
            return
        count = replay.retry_gave_up(host.lower() if host else None)
        self.stdout.write(self.style.SUCCESS(f"{count} delivery(ies) queued again."))
