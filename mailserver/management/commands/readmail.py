"""
Read one message and dispatch it, exiting with the outcome's status: the
pipe transport of the original project, kept for use by hand and in
scripts. ``django-mailpipe`` does the same without going through manage.py.

Each outcome is printed once: one line per recipient on standard output, or,
with ``--verbosity 0``, only the line that decides the exit status, on
standard error, as django-mailpipe would print it.
"""

import sys

from django.core.management.base import BaseCommand

from mailserver.envelope import Envelope
from mailserver.exceptions import MessageTooBig
from mailserver.limits import check_size, max_message_size
from mailserver.pipe import deliver, describe, receive
from mailserver.status import Outcome


class Command(BaseCommand):
    help = "Dispatch one message (a file, or standard input) to the mail views."

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", help="The message; standard input by default.")
        parser.add_argument("--sender", default=None, help="Envelope sender ('' for bounces).")
        parser.add_argument(
            "--recipient", action="append", default=[], help="Envelope recipient (repeatable)."
        )

    def handle(self, *args, **options):
        limit = max_message_size()
        try:
            if options["file"]:
                with open(options["file"], "rb") as stream:
                    raw, size = receive(stream, limit)
            else:
                raw, size = receive(sys.stdin.buffer, limit)
        except OSError as exc:
            outcome = Outcome.TEMPORARY_FAILURE
            self.finish(outcome, outcome.dsn_line(f"cannot read the message: {exc}"))
        if limit is not None and size > limit:
            try:
                check_size(size, limit)
            except MessageTooBig as exc:
                self.finish(exc.outcome, exc.outcome.dsn_line(str(exc)))
        envelope = Envelope(sender=options["sender"], size=size, transport="readmail")
        results = deliver(raw, envelope, options["recipient"] or [""])
        outcome, line = describe(results)
        if options["verbosity"] >= 1:
            # One line per recipient says it all, the failure included.
            for result in results:
                self.stdout.write(f"<{result.recipient}> {result.route or '-'}: {result.reply()}")
            line = ""
        self.finish(outcome, "" if outcome.is_success else line)

    def finish(self, outcome, line):
        if line:
            self.stderr.write(line)
        sys.exit(outcome.exit_code)
