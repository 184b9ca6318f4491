"""
Serve the mail views over LMTP (or SMTP) until stopped: the warm path, for
an MTA that delivers with its lmtp (or smtp) transport, or for
``django-mailpipe --via``. See :mod:`mailserver.server`.
"""

import asyncio
import logging
import os
import sys

from django.core.management.base import BaseCommand, CommandError


def _mode(text: str) -> int:
    try:
        return int(text, 8)
    except ValueError:
        raise ValueError(f"{text!r} is not an octal file mode") from None


def _not_the_start_line(record: logging.LogRecord) -> bool:
    return not (record.name == "mailserver.server" and str(record.msg).startswith("Serving "))


class Command(BaseCommand):
    help = (
        "Serve the mail views over LMTP (or SMTP with --smtp) on a unix socket or a "
        "loopback address. SIGTERM drains (messages in flight finish, new sessions get "
        "421) and stops, at the latest after MAIL_SERVER_DRAIN_TIMEOUT; SIGHUP reloads "
        "nothing and is only logged."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--bind",
            default=None,
            help="unix:/path or host:port (default: MAIL_SERVER_BIND, 127.0.0.1:8024).",
        )
        parser.add_argument(
            "--smtp",
            action="store_true",
            help="Speak SMTP, one recipient per transaction, instead of LMTP.",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="Threads running the views (default: MAIL_SERVER_WORKERS).",
        )
        parser.add_argument(
            "--socket-mode",
            type=_mode,
            default=0o660,
            help="File mode of a unix socket, in octal (default: 660). The MTA's "
            "delivery agent must be able to write to it.",
        )

    def handle(self, *args, **options):
        try:
            from mailserver.server import MailServer
        except ImportError as exc:
            raise CommandError(
                f"runmailserver needs aiosmtpd ({exc}): pip install 'django-mailserver[server]'"
            ) from exc
        self._configure_logging(options["verbosity"])
        try:
            server = MailServer(
                options["bind"],
                lmtp=not options["smtp"],
                workers=options["workers"],
                socket_mode=options["socket_mode"],
            )
        except ValueError as exc:
            raise CommandError(f"--bind: {exc}") from exc
        try:
            asyncio.run(self._serve(server))
        except OSError as exc:
            raise CommandError(f"Cannot listen on {server.endpoint}: {exc}") from exc
        if server.forced:
            # Worker threads may still be inside a view; do not wait for them.
            logging.shutdown()
            sys.stdout.flush()
            os._exit(1)

    async def _serve(self, server):
        # The handlers go in first: a supervisor that sends SIGTERM (or a
        # terminal that sends SIGHUP) as soon as it reads the line below must
        # find them there.
        await server.start(handle_signals=True)
        self.stdout.write(
            f"Serving {server.protocol_name} on {server.address} "
            f"({server.workers} workers). SIGTERM to stop."
        )
        self.stdout.flush()
        await server.wait_stopped()

    def _configure_logging(self, verbosity: int) -> None:
        """
        One line per recipient on standard error, unless the project's
        LOGGING already says where ``mailserver`` logs go.
        """
        logger = logging.getLogger("mailserver")
        if not logger.handlers and not logging.getLogger().handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s %(message)s"))
            # The server logs where it listens; on this console the command
            # has said so already, on standard output.
            handler.addFilter(_not_the_start_line)
            logger.addHandler(handler)
            logger.setLevel(logging.INFO if verbosity >= 1 else logging.WARNING)
        # aiosmtpd logs every command at INFO: only with -v 3.
        logging.getLogger("mail.log").setLevel(logging.DEBUG if verbosity >= 3 else logging.WARNING)
