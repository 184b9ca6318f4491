"""
What the server does with a session: the aiosmtpd handler hooks.

Recipients are checked at RCPT time with the resolver alone, on the event
loop (it is a few regular expressions): an unknown one is refused with
``550 5.1.1`` before any data is sent, and no view runs for it. After DATA
the message goes to the dispatch core once per accepted recipient, in a
worker thread, so that views stay ordinary synchronous Django code and a
slow one holds a thread, not the server. The dispatch core closes stale
database connections before and after each message, in that thread, as
Django does around a request.
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async

from ..addresses import check_recipient, check_sender
from ..envelope import Envelope
from ..exceptions import MailException
from ..limits import too_big
from ..resolvers import resolve
from ..status import Outcome
from ..transport import deliver, log_delivery, refuse
from .protocol import (
    MAIL_OK,
    MAX_RECIPIENTS,
    ONE_RECIPIENT,
    RCPT_OK,
    TOO_MANY_RECIPIENTS,
    XFORWARD_ATTRIBUTES,
)

if TYPE_CHECKING:  # pragma: no cover
    from .protocol import MailEnvelope, MailSession, SessionMixin
    from .server import MailServer

logger = logging.getLogger("mailserver.server")

# "... with ESMTP id 4XyZ12abc ..." in the Received header the MTA added last.
_RECEIVED = re.compile(rb"^received:(.*(?:\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
_RECEIVED_ID = re.compile(rb"\bid\s+([A-Za-z0-9][A-Za-z0-9._-]*)")


def received_queue_id(raw: bytes) -> str:
    """The queue id in the topmost Received header, or "" (for the log only)."""
    head = raw[:16384]
    end = head.find(b"\n\n")
    if end >= 0:
        head = head[:end]
    received = _RECEIVED.search(head)
    if received:
        found = _RECEIVED_ID.search(received.group(1))
        if found:
            return found.group(1).decode("ascii")
    return ""


class Delivery:
    """The aiosmtpd handler of :class:`~mailserver.server.MailServer`."""

    def __init__(self, server: MailServer):
        self.server = server
        self._deliver = sync_to_async(deliver, thread_sensitive=False, executor=server.executor)

    async def handle_EHLO(self, protocol, session, envelope, hostname, responses):  # noqa: N802
        session.host_name = hostname
        limit = self.server.max_size
        extensions = [
            # RFC 1870: "SIZE 0" would announce no limit.
            f"250-SIZE {limit or 0}",
            "250-PIPELINING",
            "250-ENHANCEDSTATUSCODES",
            "250-XFORWARD " + " ".join(XFORWARD_ATTRIBUTES),
        ]
        return [*responses[:-1], *extensions, responses[-1]]

    async def handle_MAIL(self, protocol, session, envelope, address, mail_options):  # noqa: N802
        limit = self.server.max_size
        for option in mail_options:
            name, _, value = option.partition("=")
            if name == "SIZE" and value.isdigit() and limit and int(value) > limit:
                refusal = too_big(value, limit)
                return refusal.outcome.reply(str(refusal))
        try:
            check_sender(address)
        except MailException as exc:
            return exc.outcome.reply(str(exc))
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return MAIL_OK

    async def handle_RCPT(self, protocol, session, envelope, address, rcpt_options):  # noqa: N802
        if protocol.lmtp is False and envelope.rcpt_tos:
            # SMTP has one reply after DATA for all recipients, which cannot
            # tell the client that one was delivered and another deferred. So
            # each recipient gets a transaction of its own (RFC 5321,
            # 4.5.3.1.10: the client sends the rest in another one).
            return ONE_RECIPIENT
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return TOO_MANY_RECIPIENTS
        started = time.perf_counter()
        try:
            # The sender's own faults first: an address that is none (5.1.3),
            # then one that no pattern matches (5.1.1), or a signed route's
            # missing, altered or expired token (5.7.1: mailserver.signing).
            check_recipient(address)
            resolve(address, self.server.mailconf)
        except MailException as exc:
            # RecipientNotFound (5.1.1), or a broken mailconf (4.3.5).
            self._log_refused(protocol, envelope, address, exc.outcome, started)
            return exc.outcome.reply(str(exc))
        except Exception:
            logger.exception("Cannot resolve <%s>", address)
            self._log_refused(protocol, envelope, address, Outcome.TEMPORARY_FAILURE, started)
            return Outcome.TEMPORARY_FAILURE.reply()
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return RCPT_OK

    def _log_refused(self, protocol, envelope, address, outcome, started) -> None:
        base = self.envelope(protocol, *protocol.state())
        log_delivery(base.for_recipient(address), outcome, "", time.perf_counter() - started)

    def envelope(
        self, protocol: SessionMixin, session: MailSession, envelope: MailEnvelope
    ) -> Envelope:
        """Our envelope for what the client said; the recipient is filled in per recipient."""
        raw = envelope.content if isinstance(envelope.content, bytes) else b""
        return Envelope(
            # "<>", the null reverse-path, becomes "" in Envelope itself.
            sender=envelope.mail_from,
            queue_id=session.xforward.get("IDENT") or received_queue_id(raw),
            client_address=session.xforward.get("ADDR", ""),
            size=envelope.size,
            transport="lmtp" if protocol.lmtp else "smtp",
        )

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SessionMixin, session: MailSession, envelope: MailEnvelope
    ) -> list[str]:
        """
        One reply per accepted recipient, in the order they were given.
        ``server`` is the session's protocol object, as aiosmtpd passes it to
        every hook; the message is in ``envelope.content`` (None when it was
        over the size limit) and its size in ``envelope.size``.
        """
        base = self.envelope(server, session, envelope)
        recipients = list(envelope.rcpt_tos)
        raw = envelope.content
        try:
            if not isinstance(raw, bytes):  # None: over the size limit
                refusal = too_big(envelope.size or 0, self.server.max_size or 0)
                results = refuse(base, recipients, refusal)
            else:
                results = await self._deliver(raw, base, recipients, mailconf=self.server.mailconf)
        except Exception:
            logger.exception("Deferred a message: the worker failed")
            return [Outcome.TEMPORARY_FAILURE.reply()] * len(recipients)
        return [result.reply() for result in results]
