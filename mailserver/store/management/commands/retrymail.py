"""Queued processing's sweep: from cron every minute, or as a long-running loop."""

import time

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone

from mailserver.conf import settings
from mailserver.store.rounds import run_rounds

DAY = 24 * 60 * 60


class Command(BaseCommand):
    help = (
        "Queued processing (MAIL_STORE_PROCESSING = 'queued'): hand the workers every stored "
        "message that no worker will run otherwise (its worker died and its lease expired, its "
        "task was lost, or its retry is due on a backend that cannot defer a task), give up "
        "those older than MAIL_STORE_MAX_AGE (ADMINS are told), and enqueue the sending of "
        "the replies that are due. Run it from cron every minute, or with --loop beside the "
        "workers; with --loop it also enqueues the retention purge once a day."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--loop", action="store_true", help="Keep running, sweeping again every --interval."
        )
        parser.add_argument(
            "--interval", type=float, default=60.0, help="Seconds between sweeps with --loop."
        )

    def handle(self, *args, loop=False, interval=60.0, verbosity=1, **options):
        if settings.MAIL_STORE_PROCESSING != "queued":
            raise CommandError(
                "MAIL_STORE_PROCESSING is not 'queued': no worker runs the messages' views."
            )
        purged_at: float | None = None

        def do_round() -> None:
            nonlocal purged_at
            counts = self.sweep()
            if loop and (purged_at is None or time.monotonic() - purged_at >= DAY):
                self.enqueue("purge_mail")
                purged_at = time.monotonic()
            # Quiet when there was nothing to do: cron mails what a job prints.
            if verbosity >= 2 or (verbosity >= 1 and any(counts.values())):
                self.stdout.write(
                    "Requeued {requeued}, given up {failed}, reply sending queued "
                    "{replies}.".format(**counts)
                )

        run_rounds(do_round, loop=loop, interval=interval)

    def sweep(self) -> dict[str, int]:
        from mailserver.store.models import OutboundMessage
        from mailserver.store.queue import sweep

        counts = sweep()
        now = timezone.now()
        due = OutboundMessage.objects.filter(
            Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now),
            status=OutboundMessage.Status.PENDING,
            next_attempt_at__lte=now,
        )
        counts["replies"] = 0
        if due.exists():
            self.enqueue("send_replies")
            counts["replies"] = 1
        return counts

    def enqueue(self, name: str) -> None:
        from mailserver.store import tasks

        tasks.configured(getattr(tasks, name)).enqueue()
