"""
The store's way through the dispatch core, for every transport.

    prepare: the raw message durable in storage, and its row, keyed by
             its idempotency key (see keys.py), not saved yet;
    process: one transaction that inserts the row unless a delivery of
             the same message has (then it is found by its key), locks it,
             and unless the message is finished already, runs the view
             (handle_message), records the final outcome and writes the
             replies to the outbox;
    after:   the replies are sent once the transaction has committed.

A temporary outcome rolls the view's work and its replies back; the
attempt is then recorded in a transaction of its own. A finished message
is answered from its record, and its view does not run again, unless a
person replays it on purpose (see replay.py). Queued
processing commits the row first (:func:`accept`) and runs
:func:`process` later on the saved row.

Two deliveries of one message at once are serialised on its row (see
:func:`take`): ``SELECT ... FOR UPDATE`` where the database has it
(PostgreSQL); on SQLite a write as the transaction's first statement,
which takes the database's write lock then rather than at the view's
first write. The second delivery waits, then finds the message finished
and replays its outcome. Nothing here is a process-local lock: pipes,
servers and workers on one database exclude each other.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from datetime import datetime
from typing import cast

from django.db import connections, router, transaction
from django.db.models import F
from django.utils import timezone

from ..conf import settings
from ..envelope import Envelope
from ..handlers import Raw, Result, handle_message, response_for_exception
from ..status import Outcome
from . import replay
from .keys import fingerprint
from .models import InboundAttempt, InboundMessage, OutboundMessage, storable
from .storage import raw_name, save_raw

logger = logging.getLogger("mailserver.store")


class RecordedResult(Result):
    """The recorded outcome of a finished message, given again without running its view."""

    def __init__(self, inbound: InboundMessage):
        super().__init__(
            Outcome[inbound.outcome.upper()],
            inbound.status_text or None,
            recipient=inbound.recipient,
        )
        self.inbound = inbound

    @property
    def route(self) -> str:
        return self.inbound.route


def handle_stored(raw: Raw, envelope: Envelope, *, mailconf: str | None = None) -> Result:
    """Store the message, then handle it once; see the module's docstring."""
    started = timezone.now()
    try:
        if settings.MAIL_STORE_PROCESSING == "queued":
            from .queue import queue_message

            inbound = accept(raw, envelope)
            return queue_message(inbound, raw, envelope, mailconf=mailconf, started=started)
        return process(prepare(raw, envelope), raw, envelope, mailconf=mailconf, started=started)
    except Exception as exc:
        # The store itself failed (storage, database): nothing was recorded
        # as done, so the message is deferred and comes again.
        response = response_for_exception(None, exc)
        return Result(
            response.outcome, response.status_text, recipient=envelope.recipient, exception=exc
        )


def prepare(raw: Raw, envelope: Envelope) -> InboundMessage:
    """
    The message's row, not saved yet, keyed: its raw bytes in it when the
    message is small (they are durable when the row is), or else durable
    in storage first (or, stored already by an earlier delivery, touched).
    """
    recipient = envelope.recipient or _recipient_from_headers(raw, envelope)
    digests = fingerprint(raw)
    small = _small(raw, digests.size)
    return InboundMessage(
        idempotency_key=digests.key(recipient),
        sender=None if envelope.sender is None else storable(envelope.sender),
        recipient=storable(recipient),
        original_recipient=storable(envelope.original_recipient),
        queue_id=storable(envelope.queue_id, 64),
        client_address=storable(envelope.client_address, 64),
        transport=storable(envelope.transport, 16),
        size=envelope.size if envelope.size is not None else digests.size,
        raw_name=raw_name(digests.raw) if small is not None else save_raw(raw, digests.raw),
        raw=small,
    )


def _small(raw: Raw, size: int) -> bytes | None:
    """The message's bytes if it is to be kept in its row (MAIL_STORE_ROW_LIMIT), else None."""
    limit = settings.MAIL_STORE_ROW_LIMIT
    if not limit or size > limit:
        return None
    if isinstance(raw, bytes):
        return raw
    raw.seek(0)
    return raw.read()


def accept(raw: Raw, envelope: Envelope) -> InboundMessage:
    """
    Store the message and commit its row ("received"), or find the row of
    an earlier delivery: what queued processing does before it tells the
    MTA 250. Inline processing needs no such commit of its own (see
    :func:`process`).
    """
    new = prepare(raw, envelope)
    with transaction.atomic(using=_database(new)):
        return take(new)


def _recipient_from_headers(raw: Raw, envelope: Envelope) -> str:
    """No envelope recipient: the one the request will take from the headers."""
    from ..request import EmailRequest

    try:
        return EmailRequest(raw, envelope).recipient
    except Exception:
        return ""  # the request fails the same way, and says why


def _database(inbound: InboundMessage) -> str:
    """The database the message's row is on, or is to be written to."""
    return inbound._state.db or router.db_for_write(InboundMessage)


def take(inbound: InboundMessage) -> InboundMessage:
    """
    In a transaction: the message's row, inserted unless a delivery of the
    same message (same key) has inserted it, locked until the transaction
    ends, and read afresh. A delivery of the same message running meanwhile
    makes this one wait for the end of its transaction.

    The insert comes first and does nothing on a conflict: on PostgreSQL it
    waits for a concurrent insert of the same key to commit or roll back,
    and ``SELECT ... FOR UPDATE`` then locks the row; on SQLite, as the
    transaction's first statement, it takes the database's write lock at
    once (Django's BEGIN there is deferred, and a transaction that reads
    first and writes later fails instead of waiting). A row this insert
    wrote is locked by it already and holds what ``inbound`` holds: it is
    not read back (see :func:`_insert`).
    """
    using = _database(inbound)
    features = connections[using].features
    if inbound.pk is None:
        if _insert(inbound, using):
            return inbound
        rows = InboundMessage.objects.using(using).filter(idempotency_key=inbound.idempotency_key)
    else:
        rows = InboundMessage.objects.using(using).filter(pk=inbound.pk)
        if not features.has_select_for_update:
            rows.update(updated_at=F("updated_at"))  # SQLite: write first
    if features.has_select_for_update:
        rows = rows.select_for_update()
    return rows.get()


def _insert(inbound: InboundMessage, using: str) -> bool:
    """
    Insert ``inbound`` unless a row has its key; whether it did. One
    statement where the database can say which (``INSERT ... ON CONFLICT DO
    NOTHING RETURNING``: PostgreSQL, SQLite 3.35 and later), so that the
    common case, a message seen for the first time, costs no read.
    """
    connection = connections[using]
    if connection.vendor not in ("postgresql", "sqlite") or not (
        connection.features.can_return_columns_from_insert
    ):
        InboundMessage.objects.using(using).bulk_create([inbound], ignore_conflicts=True)
        return False  # found by its key, as a conflict is
    opts = InboundMessage._meta
    fields = [field for field in opts.concrete_fields if not field.primary_key]
    (key,) = [field for field in fields if field.name == "idempotency_key"]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(cast(str, field.column)) for field in fields)
    sql = (
        f"INSERT INTO {quote(opts.db_table)} ({columns}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({quote(cast(str, key.column))}) DO NOTHING "
        f"RETURNING {quote(cast(str, opts.pk.column))}"
    )
    params = [field.get_db_prep_save(field.pre_save(inbound, True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    inbound.pk = row[0]
    inbound._state.adding = False
    inbound._state.db = using
    return True


def process(
    inbound: InboundMessage,
    raw: Raw,
    envelope: Envelope,
    *,
    mailconf: str | None = None,
    started: datetime | None = None,
    handle: Callable[..., Result] = handle_message,
    on_defer: Callable[[InboundMessage, Result], None] | None = None,
) -> Result:
    """
    Handle a message once: ``inbound`` is its row, saved (queued
    processing, a retry) or not yet (:func:`prepare`, inline processing:
    then the row is written in the transaction that runs the view, and a
    run cut short before the commit leaves no row, only its raw file for
    purgemail to sweep). See the module's docstring.

    Queued processing passes ``handle``, to record a refusal it found
    without the view in place of running it, and ``on_defer(inbound,
    result)``, called before a deferral is saved, to schedule the retry or
    give the message up.
    """
    from . import outbox

    started = started or timezone.now()
    using = _database(inbound)
    candidate = inbound
    queued = []
    # The replies are written claimed by this run, which sends them after
    # the commit; if it dies first, they go when the lease has run out.
    owner = outbox.lease_owner()

    def send(message):
        queued.append(outbox.queue(message, inbound, owner=owner))

    new = candidate.pk is None
    with transaction.atomic(using=using):
        inbound = take(candidate)
        # This run inserted the row: it is the message's first.
        first = new and inbound is candidate
        # Finished: answered from the record, unless this is a deliberate
        # replay of it (see replay.py), which runs the view again.
        if inbound.is_finished and not replay.requested(inbound):
            _attempt(inbound, started, envelope, replayed=True)
            # The MTA's retry is the outbox's too: a reply left unsent (the
            # sender was down, or the process died sending it) goes now.
            unsent = list(
                inbound.replies.filter(status=OutboundMessage.Status.PENDING).values_list(
                    "pk", flat=True
                )
            )
            recorded = RecordedResult(inbound)
            if unsent:
                transaction.on_commit(
                    lambda: _send_after_commit(
                        lambda: outbox.send_due(unsent, using=using), recorded, (False, False)
                    ),
                    using=using,
                )
            return recorded
        result = handle(raw, envelope, mailconf=mailconf, atomic=True, send=send)
        if result.outcome.is_temporary:
            # The view's work and its replies go; the attempt is recorded below.
            transaction.set_rollback(True, using=using)
        else:
            if inbound.is_finished:
                _record_first_run(inbound)  # a rerun (replay.py) is about to change the record
            _finish(inbound, result)
            if not (first and result.outcome.is_success):
                # A first run that succeeds is recorded by the message's
                # row alone (see InboundMessage.attempt_history): one
                # write fewer for nearly every message.
                _attempt(inbound, started, envelope, result=result)
            if queued:
                # Written, not sent yet: true again once they are.
                promised = (result.reply_sent, result.notice_sent)
                result.reply_sent = result.notice_sent = False
                transaction.on_commit(
                    lambda: _send_after_commit(
                        lambda: outbox.send_held(queued, owner), result, promised
                    ),
                    using=using,
                )
    if result.outcome.is_temporary:
        if first:  # the row it inserted was rolled back with the rest
            candidate.pk = None
            candidate._state.adding = True
        _defer(candidate, result, started, envelope, on_defer)
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
    inbound.lease_owner = ""
    inbound.lease_expires_at = None
    inbound.save(update_fields=_FINISHED_FIELDS)


# What _finish changes: the rest of the row is the envelope, written once.
_FINISHED_FIELDS = [
    "status",
    "subject",
    "message_id",
    "outcome",
    "enhanced_code",
    "status_text",
    "route",
    "attempts",
    "finished_at",
    "lease_owner",
    "lease_expires_at",
    "updated_at",
]


def _record_outcome(inbound: InboundMessage, result: Result) -> None:
    request = result.request
    if request is not None:
        inbound.subject = storable(" ".join((request.subject or "").split()), 255)
        inbound.message_id = storable(request.message_id, 255)
    inbound.outcome = result.outcome.name.lower()
    inbound.enhanced_code = result.outcome.enhanced
    inbound.status_text = _status_text(result.outcome, result.status_text)
    inbound.route = storable(result.route, 255)


def _status_text(outcome: Outcome, text: str | None) -> str:
    """
    The text as the status line shows it (on one line, what would not show
    escaped): what a replay gives again, and what any database stores.
    """
    return outcome.dsn_line(text).split(" ", 1)[1]


def _error(result: Result) -> str:
    """A traceback for a bug, the status line for an outcome a view or the message chose."""
    exc = result.exception or getattr(result.response, "exception", None)
    if exc is not None and not getattr(exc, "outcome", None):
        return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return result.dsn_line()


def _attempt(inbound, started, envelope, *, result=None, replayed=False) -> None:
    """Record an attempt: the run that gave ``result``, or a replay of the record."""
    if result is not None:
        outcome, text = result.outcome, _status_text(result.outcome, result.status_text)
        error = "" if outcome.is_success else _error(result)
    else:
        outcome, text, error = inbound.outcome_member, inbound.status_text, ""
    InboundAttempt.objects.using(_database(inbound)).create(
        message=inbound,
        started_at=started,
        transport=storable(envelope.transport, 16),
        queue_id=storable(envelope.queue_id, 64),
        replayed=replayed,
        outcome=outcome.name.lower(),
        enhanced_code=outcome.enhanced,
        status_text=storable(text),
        error=storable(error),
    )


def _record_first_run(inbound: InboundMessage) -> None:
    """
    Before anything but the record itself tells of the message's first run:
    that run's attempt, written from the record if it left none (a first
    run that succeeds leaves none; see :func:`process`).
    """
    history = InboundAttempt.objects.using(_database(inbound)).filter(message=inbound)
    if not history.filter(replayed=False).exists():
        inbound.first_run().save(using=_database(inbound))


def _defer(candidate: InboundMessage, result: Result, started, envelope, on_defer=None) -> None:
    """Record a temporary failure, unless another delivery finished the message meanwhile."""
    with transaction.atomic(using=_database(candidate)):
        inbound = take(candidate)
        if inbound.is_finished:
            if replay.requested(inbound):
                # A replay of a finished message failed: the record of the
                # run that finished it stands; this attempt is added.
                _record_first_run(inbound)
                inbound.attempts += 1
                inbound.last_error = storable(_error(result))
                inbound.save(update_fields=["attempts", "last_error", "updated_at"])
                _attempt(inbound, started, envelope, result=result)
            return
        inbound.status = InboundMessage.Status.DEFERRED
        _record_outcome(inbound, result)
        inbound.attempts += 1
        inbound.last_error = storable(_error(result))
        inbound.lease_owner = ""
        inbound.lease_expires_at = None
        if on_defer is not None:
            on_defer(inbound, result)
        inbound.save()
        _attempt(inbound, started, envelope, result=result)


def _send_after_commit(
    send: Callable[[], dict[str, int]], result: Result, promised: tuple[bool, bool]
) -> None:
    """Run ``send``; when it sends everything, the result says what was sent."""
    try:
        counts = send()
    except Exception:
        # The replies stay in the outbox for sendreplies; the message is done.
        logger.exception("Could not send the replies to <%s>", result.recipient)
        return
    if not counts["retry"] and not counts["failed"] and counts["sent"]:
        result.reply_sent, result.notice_sent = promised
