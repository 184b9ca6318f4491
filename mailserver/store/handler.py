"""
The store's way through the dispatch core, for every transport.

    accept:  the raw message durable in storage, then its row ("received"),
             found again by its idempotency key when it comes twice;
    process: one transaction that locks the row, and unless the message
             is finished already, runs the view (handle_message), records
             the final outcome and writes the replies to the outbox;
    after:   the replies are sent once the transaction has committed.

A temporary outcome rolls the view's work and its replies back; the
attempt is then recorded in a transaction of its own. A finished message
is answered from its record, and its view does not run again.

Two deliveries of one message at once are serialised by the row lock:
``SELECT ... FOR UPDATE`` where the database has it (PostgreSQL); on SQLite
a write as the transaction's first statement, which takes the database's
write lock then rather than at the view's first write (a SQLite
transaction that reads first and writes later may fail instead of wait).
The second delivery waits, then finds the message finished and replays its
outcome. Nothing here is a process-local lock: pipes, servers and workers
on one database exclude each other.
"""

from __future__ import annotations

import logging
import traceback

from django.db import connections, router, transaction
from django.db.models import F
from django.utils import timezone

from ..conf import settings
from ..envelope import Envelope
from ..handlers import Result, handle_message, response_for_exception
from .keys import fingerprint
from .models import InboundAttempt, InboundMessage, OutboundMessage
from .storage import save_raw

logger = logging.getLogger("mailserver.store")


class RecordedResult(Result):
    """The recorded outcome of a finished message, given again without running its view."""

    def __init__(self, inbound: InboundMessage):
        super().__init__(
            inbound.outcome_member, inbound.status_text or None, recipient=inbound.recipient
        )
        self.inbound = inbound

    @property
    def route(self) -> str:
        return self.inbound.route


def handle_stored(raw, envelope: Envelope, *, mailconf: str | None = None) -> Result:
    """Store the message, then handle it once; see the module's docstring."""
    started = timezone.now()
    try:
        inbound = accept(raw, envelope)
        if settings.MAIL_STORE_PROCESSING == "queued":
            from .queue import take

            return take(inbound, raw, envelope, mailconf=mailconf, started=started)
        return process(inbound, raw, envelope, mailconf=mailconf, started=started)
    except Exception as exc:
        # The store itself failed (storage, database): nothing was recorded
        # as done, so the message is deferred and comes again.
        response = response_for_exception(None, exc)
        return Result(
            response.outcome, response.text, recipient=envelope.recipient, exception=exc
        )


def accept(raw, envelope: Envelope) -> InboundMessage:
    """
    The message's row, found by its key or created, its raw bytes durable
    in storage before the row that points to them is written.
    """
    recipient = envelope.recipient or _recipient_from_headers(raw, envelope)
    digests = fingerprint(raw)
    key = digests.key(recipient)
    using = router.db_for_write(InboundMessage)
    messages = InboundMessage.objects.db_manager(using)
    found = messages.filter(idempotency_key=key).first()
    if found is not None:
        return found
    raw_name = save_raw(raw, digests.raw)
    inbound, _ = messages.get_or_create(
        idempotency_key=key,
        defaults={
            "sender": envelope.sender,
            "recipient": recipient,
            "original_recipient": envelope.original_recipient,
            "queue_id": envelope.queue_id[:64],
            "client_address": envelope.client_address[:64],
            "transport": envelope.transport[:16],
            "size": envelope.size if envelope.size is not None else digests.size,
            "raw_name": raw_name,
        },
    )
    return inbound


def _recipient_from_headers(raw, envelope: Envelope) -> str:
    """No envelope recipient: the one the request will take from the headers."""
    from ..request import EmailRequest

    try:
        return EmailRequest(raw, envelope).recipient
    except Exception:
        return ""  # the request fails the same way, and says why


def lock(inbound: InboundMessage) -> InboundMessage:
    """
    Take the message's row for this transaction and read it afresh: a
    delivery of the same message running meanwhile waits here until this
    transaction ends, and this one waits for it.
    """
    using = inbound._state.db
    rows = InboundMessage.objects.using(using).filter(pk=inbound.pk)
    if connections[using].features.has_select_for_update:
        return rows.select_for_update().get()
    # Django's BEGIN on SQLite is deferred: write first, or wait for nothing.
    rows.update(updated_at=F("updated_at"))
    return rows.get()


def process(
    inbound: InboundMessage,
    raw,
    envelope: Envelope,
    *,
    mailconf: str | None = None,
    started=None,
    handle=handle_message,
    on_defer=None,
) -> Result:
    """
    Handle a stored message once: see the module's docstring. ``handle``
    stands in for :func:`~mailserver.handlers.handle_message` (queued mode
    records a refusal it found without the view); ``on_defer(inbound,
    result)`` is called before a deferral is saved (queued mode schedules
    the retry, or gives up).
    """
    from . import outbox

    started = started or timezone.now()
    using = inbound._state.db
    queued = []

    def send(message):
        queued.append(outbox.queue(message, inbound))

    with transaction.atomic(using=using):
        inbound = lock(inbound)
        if inbound.is_finished:
            _attempt(inbound, started, envelope, replayed=True)
            # The MTA's retry is the outbox's too: a reply left unsent (the
            # sender was down, or the process died sending it) goes now.
            unsent = list(
                inbound.replies.filter(status=OutboundMessage.Status.PENDING).values_list(
                    "pk", flat=True
                )
            )
            result = RecordedResult(inbound)
            if unsent:
                transaction.on_commit(
                    lambda: _send_after_commit(unsent, result, (False, False), using),
                    using=using,
                )
            return result
        result = handle(raw, envelope, mailconf=mailconf, atomic=True, send=send)
        if result.outcome.is_temporary:
            # The view's work and its replies go; the attempt is recorded below.
            transaction.set_rollback(True, using=using)
        else:
            _finish(inbound, result)
            _attempt(inbound, started, envelope, result=result)
            if queued:
                # Written, not sent yet: true again once they are.
                promised = (result.reply_sent, result.notice_sent)
                result.reply_sent = result.notice_sent = False
                ids = [q.pk for q in queued]
                transaction.on_commit(
                    lambda: _send_after_commit(ids, result, promised, using), using=using
                )
    if result.outcome.is_temporary:
        _defer(inbound, result, started, envelope, on_defer)
    return result


def _finish(inbound: InboundMessage, result: Result) -> None:
    inbound.status = (
        InboundMessage.Status.PROCESSED
        if result.outcome.is_success
        else InboundMessage.Status.BOUNCED
    )
    _record_outcome(inbound, result)
    inbound.attempts += 1
    inbound.finished_at = timezone.now()
    inbound.lease_owner, inbound.lease_expires_at = "", None
    inbound.save()


def _record_outcome(inbound: InboundMessage, result: Result) -> None:
    request = result.request
    if request is not None:
        inbound.subject = " ".join((request.subject or "").split())[:255]
        inbound.message_id = (request.message_id or "")[:255]
    inbound.outcome = result.outcome.name.lower()
    inbound.enhanced_code = result.outcome.enhanced
    inbound.status_text = result.text or result.outcome.text
    inbound.route = (result.route or "")[:255]


def _error(result: Result) -> str:
    """A traceback for a bug, the status line for an outcome a view or the message chose."""
    exc = result.exception or getattr(result.response, "exception", None)
    if exc is not None and not getattr(exc, "outcome", None):
        return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return result.dsn_line()


def _attempt(inbound, started, envelope, *, result=None, replayed=False) -> None:
    outcome = result.outcome if result is not None else inbound.outcome_member
    InboundAttempt.objects.using(inbound._state.db).create(
        message=inbound,
        started_at=started,
        transport=envelope.transport[:16],
        queue_id=envelope.queue_id[:64],
        replayed=replayed,
        outcome=outcome.name.lower(),
        enhanced_code=outcome.enhanced,
        status_text=(result.text or outcome.text) if result is not None else inbound.status_text,
        error=_error(result) if result is not None and not outcome.is_success else "",
    )


def _defer(inbound: InboundMessage, result: Result, started, envelope, on_defer=None) -> None:
    """Record a temporary failure, unless another delivery finished the message meanwhile."""
    using = inbound._state.db
    with transaction.atomic(using=using):
        inbound = lock(inbound)
        if inbound.is_finished:
            return
        inbound.status = InboundMessage.Status.DEFERRED
        _record_outcome(inbound, result)
        inbound.attempts += 1
        inbound.last_error = _error(result)
        inbound.lease_owner, inbound.lease_expires_at = "", None
        if on_defer is not None:
            on_defer(inbound, result)
        inbound.save()
        _attempt(inbound, started, envelope, result=result)


def _send_after_commit(ids, result: Result, promised, using: str) -> None:
    from . import outbox

    try:
        counts = outbox.send_due(ids, using=using)
    except Exception:
        # The replies stay in the outbox for sendreplies; the message is done.
        logger.exception("Could not send the replies to <%s>", result.recipient)
        return
    if counts["sent"] == len(ids):
        result.reply_sent, result.notice_sent = promised


