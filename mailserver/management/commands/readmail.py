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
from mailserver.limits import max_message_size
from mailserver.status import Outcome
from mailserver.transport import check_size, decide, deliver, receive, refuse


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
        envelope = Envelope(sender=options["sender"], size=size, transport="readmail")
        recipients = options["recipient"] or [""]
        refusal = check_size(size, limit)
        if refusal is not None:
            results = refuse(envelope, recipients, refusal)
        else:
            results = deliver(raw, envelope, recipients)
        outcome, line = decide(results)
        if options["verbosity"] >= 1:
            # One line per recipient says it all, the failure included.
            for result in results:
                self.stdout.write(f"<{result.recipient}> {result.route or '-'}: {result.reply()}")
            line = ""
        self.finish(outcome, line)

    def finish(self, outcome, line):
        if line:
            self.stderr.write(line)
        sys.exit(outcome.exit_code)
