"""
Queued processing: the MTA is answered once the message is stored, and its
view runs later as a task (see :mod:`.tasks`), in the same transaction as
inline processing (:func:`.handler.process`).

    queue_message:  in the transport's process. What needs no view is
                    checked at once (envelope syntax, size and structure
                    limits, a route for the recipient), so a message that
                    cannot be delivered is still refused while the MTA
                    waits; the rest is queued: 250, and a task is enqueued.
    run:            in a worker. The message is claimed under a lease, its
                    view run; a temporary failure is retried with
                    exponential backoff until MAIL_STORE_MAX_AGE, then the
                    message is failed and ADMINS are told.
    sweep:          from cron or a loop (``manage.py retrymail``). A message
                    whose worker died, whose task was lost, or whose retry
                    the backend could not schedule is handed to the workers
                    again.

Exactly once rests on the row lock that :func:`.handler.process` takes for
the view's transaction, not on the task backend: a task run twice, or two
workers on one message, find it finished and do nothing. The lease only
says who is working on a message and until when, so that one whose worker
died is taken over rather than left in "processing" for good. Where the
database has ``SKIP LOCKED`` (PostgreSQL), claiming and sweeping pass over
a row whose view is running, whatever its lease says; SQLite has one
writer at a time, so its write lock does the same.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import replace

from django.db import OperationalError, connections, router, transaction
from django.db.models import Q
from django.utils import timezone

from .. import signals
from ..autoreply import send_failure_notice
from ..conf import duration
from ..envelope import Envelope
from ..handlers import (
    MailHandler,
    Result,
    build_request,
    get_handler,
    response_for_exception,
)
from ..status import Outcome
from .handler import _attempt, process
from .models import InboundMessage

logger = logging.getLogger("mailserver.store")

Status = InboundMessage.Status
UNFINISHED = (Status.RECEIVED, Status.PROCESSING, Status.DEFERRED)


# In the transport ---------------------------------------------------------------


def queue_message(
    inbound: InboundMessage, raw, envelope: Envelope, *, mailconf=None, started=None
) -> Result:
    """
    The MTA's answer for a stored message in queued mode: its recorded
    outcome if it is finished; a refusal if a check that needs no view
    fails (recorded, as inline mode records it); else QUEUED, with a task
    enqueued unless one is at work on it or due later.
    """
    started = started or timezone.now()
    if inbound.is_finished:
        return process(inbound, raw, envelope, mailconf=mailconf, started=started)
    verdict = check(raw, envelope, mailconf=mailconf)
    if verdict.outcome is not Outcome.QUEUED:
        return process(
            inbound, raw, envelope, mailconf=mailconf, started=started, handle=_found(verdict)
        )
    if _waiting(inbound):
        enqueue(inbound, mailconf=mailconf)
    _attempt(inbound, started, envelope, result=verdict)
    return verdict


def check(raw, envelope: Envelope, *, mailconf: str | None = None) -> Result:
    """
    What can be known without the view: QUEUED when the view may run later,
    else the outcome that refuses (or defers) the message now.
    """
    request = None
    try:
        request = build_request(raw, envelope)
        get_handler(mailconf).resolve(request)
    except Exception as exc:
        response = response_for_exception(request, exc)
        recipient = request.recipient if request is not None else envelope.recipient
        return Result(
            response.outcome, response.status_text, request, None, recipient, exception=exc
        )
    return Result(Outcome.QUEUED, None, request, None, request.recipient)


def _found(verdict: Result):
    """A stand-in for handle_message that gives the check's verdict, as process() records it."""

    def handle(raw, envelope, *, mailconf=None, atomic=None, send=None):
        if verdict.outcome.is_permanent and verdict.request is not None:
            verdict.notice_sent = send_failure_notice(verdict.request, verdict, send)
        return verdict

    return handle


def _waiting(inbound: InboundMessage) -> bool:
    """Whether no worker holds the message and it is not waiting for a retry later."""
    now = timezone.now()
    if inbound.lease_expires_at is not None and inbound.lease_expires_at > now:
        return False
    return inbound.next_attempt_at is None or inbound.next_attempt_at <= now


def enqueue(inbound: InboundMessage, *, run_after=None, mailconf: str | None = None) -> None:
    """
    Hand the message to the workers: a task for it on MAIL_STORE_TASK_BACKEND,
    to run no earlier than ``run_after`` where the backend can defer a task
    (where it cannot, retrymail enqueues the retry when it is due), with
    ``mailconf`` when it is not ROOT_MAILCONF (retrymail knows none).
    """
    from .tasks import configured, process_message

    task = configured(process_message)
    if run_after is not None and run_after > timezone.now():
        if not task.get_backend().supports_defer:
            return  # retrymail's to enqueue, when it is due
        task = task.using(run_after=run_after)
    if mailconf is None:
        task.enqueue(inbound.pk)
    else:
        task.enqueue(inbound.pk, mailconf)


# In the worker ------------------------------------------------------------------


def claimable(now, using: str):
    """Messages a worker may take now: unfinished, due, and held by no live lease."""
    return InboundMessage.objects.using(using).filter(
        Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now),
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
        status__in=UNFINISHED,
    )


def claim(pk: int, owner: str, *, using: str | None = None) -> InboundMessage | None:
    """
    Take the message for ``owner`` until its lease expires, or None if it
    is finished, not due, or held by another worker.
    """
    using = using or router.db_for_write(InboundMessage)
    now = timezone.now()
    taken = _update_unlocked(
        claimable(now, using).filter(pk=pk),
        status=Status.PROCESSING,
        lease_owner=owner,
        lease_expires_at=now + duration("MAIL_STORE_LEASE"),
    )
    return InboundMessage.objects.using(using).get(pk=pk) if taken else None


def _update_unlocked(rows, **changes) -> int:
    """
    Update the rows that still match and that no transaction holds. On
    PostgreSQL a row locked by a running view is skipped, not waited for
    (a plain UPDATE would wait for the view's commit); on SQLite the UPDATE
    takes the write lock, and fails as busy while a view holds it.
    """
    using = rows.db
    if not connections[using].features.has_select_for_update_skip_locked:
        return rows.update(**changes)
    with transaction.atomic(using=using):
        pks = list(rows.select_for_update(skip_locked=True).values_list("pk", flat=True))
        return rows.filter(pk__in=pks).update(**changes) if pks else 0


def envelope_of(inbound: InboundMessage) -> Envelope:
    """The envelope as the transport gave it, from the message's record."""
    return Envelope(
        sender=inbound.sender,
        recipient=inbound.recipient,
        original_recipient=inbound.original_recipient,
        queue_id=inbound.queue_id,
        client_address=inbound.client_address,
        size=inbound.size,
        transport=inbound.transport,
    )


def run(pk: int, *, mailconf: str | None = None) -> str:
    """
    Run the view of the stored message ``pk`` once, as a worker does: claim
    it, then :func:`.handler.process` it with retries scheduled. Returns
    what became of it: its status, or "skipped" when it was not ours to
    run (finished, not due, or another worker's).
    """
    from ..transport import log_delivery
    from . import outbox

    owner = outbox.lease_owner()
    inbound = claim(pk, owner)
    if inbound is None:
        return "skipped"
    envelope = envelope_of(inbound)
    started, clock = timezone.now(), time.perf_counter()
    signals.message_started.send(sender=MailHandler, envelope=envelope)
    try:
        with inbound.open_raw() as raw:
            result = process(
                inbound,
                raw,
                envelope,
                mailconf=mailconf,
                started=started,
                on_defer=functools.partial(schedule, mailconf=mailconf),
            )
    finally:
        signals.message_finished.send(sender=MailHandler)
    signals.message_handled.send(sender=MailHandler, request=result.request, result=result)
    log_delivery(
        replace(envelope, transport="task"),
        result.outcome,
        result.route,
        time.perf_counter() - clock,
        recipient=result.recipient,
    )
    inbound.refresh_from_db(fields=["status"])
    return inbound.status


def retry_delay(attempts: int):
    """After the n-th failed run: MAIL_STORE_RETRY_DELAY, doubled each time, up to the maximum."""
    first = duration("MAIL_STORE_RETRY_DELAY")
    return min(first * 2 ** max(attempts - 1, 0), duration("MAIL_STORE_MAX_RETRY_DELAY"))


def schedule(inbound: InboundMessage, result: Result, *, mailconf: str | None = None) -> None:
    """
    process()'s ``on_defer``: the temporary failure just recorded is retried
    after the backoff, or, once the message is older than MAIL_STORE_MAX_AGE,
    it is given up: failed, and ADMINS are told after the commit.
    """
    using = inbound._state.db
    now = timezone.now()
    if now - inbound.received_at >= duration("MAIL_STORE_MAX_AGE"):
        inbound.status = Status.FAILED
        inbound.finished_at = now
        inbound.next_attempt_at = None
        transaction.on_commit(lambda: report_failed(inbound), using=using)
        return
    inbound.next_attempt_at = now + retry_delay(inbound.attempts)
    transaction.on_commit(
        lambda: _enqueue_quietly(inbound, run_after=inbound.next_attempt_at, mailconf=mailconf),
        using=using,
    )


def _enqueue_quietly(inbound: InboundMessage, **kwargs) -> None:
    try:
        enqueue(inbound, **kwargs)
    except Exception:
        # Recorded as deferred and due: retrymail enqueues it.
        logger.exception("Could not enqueue the retry of message %s", inbound.pk)


def report_failed(inbound: InboundMessage) -> None:
    """Tell ADMINS that a message was given up, and why."""
    from ..mailers import mail_admins

    logger.error(
        "Gave up message %s to <%s> after %d attempts: %s",
        inbound.pk,
        inbound.recipient,
        inbound.attempts,
        inbound.status_text,
    )
    try:
        mail_admins(
            f"Mail to {inbound.recipient} given up: {inbound.status_text}"[:200],
            f"The message {inbound.message_id or '(no Message-ID)'} from <{inbound.sender}> "
            f"to <{inbound.recipient}>, received {inbound.received_at:%Y-%m-%d %H:%M %Z}, "
            f"could not be processed in {inbound.attempts} attempts and is older than "
            f"MAIL_STORE_MAX_AGE; it is marked failed.\n\nLast error:\n{inbound.last_error}\n",
        )
    except Exception:
        logger.exception("Could not tell ADMINS about message %s", inbound.pk)


# The sweep ----------------------------------------------------------------------


def lost(now, using: str, *, can_defer: bool = True):
    """
    Unfinished messages no worker will run unless handed over again: a lease
    expired (its worker died), or due longer than MAIL_STORE_LEASE ago with
    nobody holding it (its task was lost, or its worker died before claiming
    it). Where the backend cannot defer a task, a retry as soon as it is due.
    """
    lease = duration("MAIL_STORE_LEASE")
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now)
    overdue = Q(next_attempt_at__lte=now - lease) | Q(
        next_attempt_at__isnull=True, received_at__lte=now - lease
    )
    due = Q(status=Status.PROCESSING) | overdue
    if not can_defer:
        due |= Q(status=Status.DEFERRED, next_attempt_at__lte=now)
    return InboundMessage.objects.using(using).filter(free, due, status__in=UNFINISHED)


def sweep(*, now=None, using: str | None = None, limit: int = 1000) -> dict[str, int]:
    """
    Hand lost messages to the workers again (``requeued``), and give up
    those past MAIL_STORE_MAX_AGE (``failed``). A message is taken row by
    row, locked, and skipped where a running view holds it (PostgreSQL) or
    the database is busy (SQLite): the next sweep sees it again.
    """
    from .tasks import configured, process_message

    using = using or router.db_for_write(InboundMessage)
    now = now or timezone.now()
    can_defer = configured(process_message).get_backend().supports_defer
    counts = {"requeued": 0, "failed": 0}
    pks = list(
        lost(now, using, can_defer=can_defer)
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )
    too_old = now - duration("MAIL_STORE_MAX_AGE")
    for pk in pks:
        rows = lost(now, using, can_defer=can_defer).filter(pk=pk)
        try:
            if _update_unlocked(
                rows.filter(received_at__lte=too_old),
                status=Status.FAILED,
                finished_at=now,
                next_attempt_at=None,
                lease_owner="",
                lease_expires_at=None,
            ):
                _give_up(pk, using)
                counts["failed"] += 1
            elif _update_unlocked(
                rows,
                status=Status.RECEIVED,
                next_attempt_at=now,
                lease_owner="",
                lease_expires_at=None,
            ):
                enqueue(InboundMessage.objects.using(using).get(pk=pk))
                counts["requeued"] += 1
        except OperationalError as exc:
            if "locked" not in str(exc).lower():
                raise
            logger.info("Message %s is busy; the next sweep takes it", pk)
    return counts


def _give_up(pk: int, using: str) -> None:
    """A message failed by the sweep: an outcome if it never reached one, and ADMINS told."""
    failure = Outcome.TEMPORARY_FAILURE
    InboundMessage.objects.using(using).filter(pk=pk, outcome="").update(
        outcome=failure.name.lower(),
        enhanced_code=failure.enhanced,
        status_text="no worker finished it before MAIL_STORE_MAX_AGE",
    )
    report_failed(InboundMessage.objects.using(using).get(pk=pk))
