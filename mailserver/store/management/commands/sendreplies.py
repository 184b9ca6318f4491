"""Send the replies waiting in the outbox: from cron, or as a long-running sender."""

from django.core.management.base import BaseCommand

from mailserver.store.outbox import send_due
from mailserver.store.rounds import run_rounds


class Command(BaseCommand):
    help = (
        "Send the replies in the outbox that are due, each claimed under a lease so that "
        "several senders never send one twice. Failed sends are retried with backoff; a "
        "reply older than MAIL_OUTBOX_MAX_AGE is marked failed and ADMINS are told."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--loop", action="store_true", help="Keep running, looking again every --interval."
        )
        parser.add_argument(
            "--interval", type=float, default=10.0, help="Seconds between rounds with --loop."
        )
        parser.add_argument(
            "--limit", type=int, default=None, help="At most this many replies per round."
        )
        parser.add_argument(
            "--flush",
            action="store_true",
            help="Send every pending reply now, whatever its retry time (once the outgoing "
            "mail server is back, as postqueue -f does).",
        )

    def handle(
        self, *args, loop=False, interval=10.0, limit=None, flush=False, verbosity=1, **options
    ):
        def do_round() -> None:
            nonlocal flush
            counts = send_due(limit=limit, flush=flush)
            flush = False  # a --loop flushes once, then keeps the schedule
            if verbosity >= 1 and (not loop or any(counts.values())):
                self.stdout.write(
                    "Sent {sent}, to retry {retry}, given up {failed}.".format(**counts)
                )

        run_rounds(do_round, loop=loop, interval=interval)
