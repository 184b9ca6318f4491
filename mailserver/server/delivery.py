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

Memory: the message stays in its spool (on disk past a megabyte), and each
recipient's request is dropped once its reply is known, so a transaction
holds one parsed message at a time however many recipients it has.

Time: the views of a message get MAIL_SERVER_DEADLINE seconds. Past it,
each recipient not yet answered gets ``451 4.3.0`` (the MTA retries), the
thread still inside the view is reported with its stack, and the pool
starts a replacement (see :mod:`.workers`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import IO, TYPE_CHECKING, cast

from asgiref.sync import sync_to_async

from ..addresses import check_recipient, check_sender
from ..envelope import Envelope
from ..exceptions import MailException
from ..limits import too_big
from ..resolvers import resolve
from ..status import Outcome
from ..transport import deliver, log_delivery, printable, refuse
from .protocol import (
    MAIL_OK,
    MAX_RECIPIENTS,
    ONE_RECIPIENT,
    RCPT_OK,
    TOO_MANY_RECIPIENTS,
    XFORWARD_ATTRIBUTES,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..handlers import Result
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


def _head(spool: IO[bytes] | None) -> bytes:
    """The start of the message, where the Received headers are."""
    if spool is None:
        return b""
    head = spool.read(16384)
    spool.seek(0)
    return head


class Transaction:
    """
    One message's recipients, run in a worker thread. The event loop reads
    the replies so far, and may give up on the rest (``abandoned``) when
    the deadline passes; the thread then stops before the next recipient.
    """

    def __init__(
        self,
        spool: IO[bytes],
        envelope: Envelope,
        recipients: list[str],
        mailconf: str | None,
    ):
        self.spool = spool
        self.envelope = envelope
        self.recipients = recipients
        self.mailconf = mailconf
        self.replies: list[str] = []
        self.abandoned = False
        self.recipient = ""  # the one being handled
        self.thread: threading.Thread | None = None

    def run(self) -> None:
        # The spool is not closed here: a view may keep its request, whose
        # raw bytes are read from it on demand. It goes (and its file with
        # it) when the last reference does.
        self.thread = threading.current_thread()
        for recipient in self.recipients:
            if self.abandoned:
                break
            self.recipient = recipient
            # Only the reply is kept: the request (the parsed message) goes
            # before the next recipient's is built.
            (result,) = deliver(self.spool, self.envelope, [recipient], mailconf=self.mailconf)
            self.replies.append(result.reply())
            _drop_tracebacks(result)
            del result


def _drop_tracebacks(result: Result) -> None:
    """
    Drop the tracebacks of the exceptions a result keeps (a view's, on its
    response), chained ones included, once its reply is known. A traceback
    holds the frames of the dispatch, and each frame its caller, up to those
    that held the result and the request: a reference cycle, which only the
    cyclic collector frees, so that a transaction whose views raise kept
    every recipient's request. The server needs no traceback after the
    dispatch: an exception that names no outcome was logged, with its
    traceback, when it happened.
    """
    exceptions = [result.exception, getattr(result.response, "exception", None)]
    seen: set[int] = set()
    while exceptions:
        exc = exceptions.pop()
        if exc is not None and id(exc) not in seen:
            seen.add(id(exc))
            exc.__traceback__ = None
            exceptions += [exc.__cause__, exc.__context__]


class Delivery:
    """The aiosmtpd handler of :class:`~mailserver.server.MailServer`."""

    def __init__(self, server: MailServer):
        self.server = server
        # asgiref only hands the executor to run_in_executor(), which takes
        # any Executor; its annotation names ThreadPoolExecutor.
        executor = cast(ThreadPoolExecutor, server.executor)
        self._run = sync_to_async(self._in_worker, thread_sensitive=False, executor=executor)

    @staticmethod
    def _in_worker(transaction: Transaction) -> None:
        transaction.run()

    async def handle_EHLO(self, protocol, session, envelope, hostname, responses):  # noqa: N802
        session.host_name = hostname
        limit = self.server.max_size
        extensions = [
            # RFC 1870: "SIZE 0" would announce no limit.
            f"250-SIZE {limit or 0}",
            "250-PIPELINING",
            "250-ENHANCEDSTATUSCODES",
        ]
        if self.server.allows_xforward(session.peer):
            extensions.append("250-XFORWARD " + " ".join(XFORWARD_ATTRIBUTES))
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
            logger.exception("Cannot resolve <%s>", printable(address))
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
        return Envelope(
            # "<>", the null reverse-path, becomes "" in Envelope itself.
            sender=envelope.mail_from,
            queue_id=session.xforward.get("IDENT") or received_queue_id(_head(envelope.spool)),
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
        every hook; the message is in ``envelope.spool`` (None when it was
        over the size limit), which this takes over, and its size in
        ``envelope.size``.
        """
        base = self.envelope(server, session, envelope)
        recipients = list(envelope.rcpt_tos)
        spool, envelope.spool = envelope.spool, None
        if spool is None:  # over the size limit
            refusal = too_big(envelope.size or 0, self.server.max_size or 0)
            return [result.reply() for result in refuse(base, recipients, refusal)]
        transaction = Transaction(spool, base, recipients, self.server.mailconf)
        task = asyncio.ensure_future(self._run(transaction))
        try:
            finished = await _finished_within(task, self.server.deadline)
        except asyncio.CancelledError:  # the client went away: the view goes on
            task.add_done_callback(_retrieve)
            raise
        if finished:
            if task.exception() is None:
                return transaction.replies
            logger.error("Deferred a message: the worker failed", exc_info=task.exception())
            return self._defer_the_rest(transaction, base, recipients, "")
        # Past the deadline: the thread goes on with its view, and is
        # reported; whatever it decides is no longer anyone's answer.
        transaction.abandoned = True
        task.add_done_callback(_retrieve)
        self.server.report_stuck(transaction.thread, transaction.recipient)
        return self._defer_the_rest(
            transaction,
            base,
            recipients,
            f"not handled within {self.server.deadline:g} seconds, try again later",
        )

    def _defer_the_rest(
        self, transaction: Transaction, base: Envelope, recipients: list[str], text: str
    ) -> list[str]:
        replies = list(transaction.replies)
        for recipient in recipients[len(replies) :]:
            log_delivery(base.for_recipient(recipient), Outcome.TEMPORARY_FAILURE, "", 0.0)
            replies.append(Outcome.TEMPORARY_FAILURE.reply(text or None))
        return replies


async def _finished_within(task: asyncio.Future, seconds: float | None) -> bool:
    """
    Wait for ``task`` at most ``seconds`` (None: for ever), without
    cancelling it; whether it finished. What asyncio.wait() does for one
    task, for a third of its cost: this runs once per message.
    """
    if seconds is None:
        await asyncio.wait({task})
        return True
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()

    def wake(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    task.add_done_callback(wake)
    timer = loop.call_later(seconds, wake)
    try:
        await waiter
    finally:
        timer.cancel()
        task.remove_done_callback(wake)
    return task.done()


def _retrieve(task: asyncio.Future) -> None:
    # An abandoned worker that fails later has nobody to tell; say it here.
    if not task.cancelled() and task.exception() is not None:
        logger.error("An abandoned message's worker failed", exc_info=task.exception())
