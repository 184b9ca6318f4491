"""
The reply outbox: replies and failure notices leave through the database.

A view's reply is written here, serialised, in the transaction that runs
the view, and sent once that transaction has committed: a rolled-back view
announces nothing, and a committed one cannot lose its reply. Sending is
never part of the inbound message's fate: if the mail server that sends
our mail is down, the inbound message is still delivered and the reply
waits here, retried with backoff by ``manage.py sendreplies`` until it is
sent or too old.

Each send is claimed first with a lease (a conditional UPDATE, which works
the same on every database), so two senders never send one reply at the
same time. The one window left is a crash between the mail server's
acceptance and our marking the reply sent: then it is sent again after the
lease, with the same bytes and Message-ID, which lets the receiver tell.
"""

from __future__ import annotations

import email
import email.message
import email.parser
import email.policy
import email.utils
import logging
import os
import re
import socket
import uuid
from collections.abc import Iterable, Iterator

from django.core.mail import EmailMessage
from django.db import router
from django.db.models import F, Q
from django.utils import timezone

from ..conf import duration
from ..mailers import get_mailer, mail_admins
from .models import InboundMessage, OutboundMessage, storable

logger = logging.getLogger("mailserver.store")


def queue(
    message: EmailMessage, inbound: InboundMessage | None = None, *, owner: str = ""
) -> OutboundMessage:
    """
    Write ``message`` to the outbox in the current transaction: its bytes
    as they will be sent, Message-ID and Date fixed now, and its envelope.
    With ``owner``, it is written claimed by that sender already (the
    process that sends it once the transaction commits: no claim to write
    then), under a lease like any claim.
    """
    from ..response import EmailResponse

    mime = message.message()
    using = inbound._state.db if inbound is not None else None
    return OutboundMessage.objects.using(using or router.db_for_write(OutboundMessage)).create(
        inbound=inbound,
        kind=(
            OutboundMessage.Kind.REPLY
            if isinstance(message, EmailResponse)
            else OutboundMessage.Kind.NOTICE
        ),
        raw=mime.as_bytes(),
        message_id=storable(str(mime["Message-ID"] or "").strip(), 255),
        sender=storable(str(message.from_email or "")),
        recipients=[storable(str(r)) for r in message.recipients()],
        subject=storable(" ".join(str(message.subject or "").split()), 255),
        lease_owner=owner,
        lease_expires_at=timezone.now() + duration("MAIL_OUTBOX_LEASE") if owner else None,
    )


def lease_owner() -> str:
    """A sender's name in a lease: unique to this call, and saying where it runs."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def send_due(
    ids: Iterable[int] | None = None,
    *,
    using: str | None = None,
    limit: int | None = None,
    flush: bool = False,
) -> dict[str, int]:
    """
    Send the pending replies that are due (only those in ``ids``, if given;
    with ``flush``, whatever their retry time, as ``postqueue -f`` does),
    each claimed under a lease first. Never raises for a failed send: the
    reply is rescheduled, or given up when too old. Returns counts by what
    became of them: sent, retry, failed.
    """
    using = using or router.db_for_write(OutboundMessage)
    now = timezone.now()
    due = OutboundMessage.objects.using(using).filter(
        Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now),
        status=OutboundMessage.Status.PENDING,
    )
    if not flush:
        due = due.filter(next_attempt_at__lte=now)
    if ids is not None:
        due = due.filter(pk__in=list(ids))
    pks = list(due.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])
    owner = lease_owner()
    # Claimed one at a time, just before each is sent.
    return _send((_claim(pk, owner, using) for pk in pks), owner)


def resend(ids: Iterable[int], *, using: str | None = None) -> dict[str, int]:
    """
    Send the replies in ``ids`` now, whatever their retry time (the admin's
    Resend): a failed one is made pending again first. Each gets one
    attempt, claimed as any send is (one another sender holds is left to
    it); one that fails again is rescheduled, or failed again when older
    than MAIL_OUTBOX_MAX_AGE, as any failed send.
    """
    using = using or router.db_for_write(OutboundMessage)
    ids = list(ids)
    OutboundMessage.objects.using(using).filter(
        pk__in=ids, status=OutboundMessage.Status.FAILED
    ).update(status=OutboundMessage.Status.PENDING, next_attempt_at=timezone.now())
    return send_due(ids, using=using, flush=True)


def send_held(outbounds: Iterable[OutboundMessage], owner: str) -> dict[str, int]:
    """
    Send the replies ``owner`` wrote claimed (see queue()), as written: not
    read back, since only a sender whose claim had run out could have
    changed them, and the lease is checked here.
    """
    now = timezone.now()
    held = [
        outbound
        for outbound in outbounds
        if outbound.lease_owner == owner
        and outbound.lease_expires_at is not None
        and outbound.lease_expires_at > now
        and outbound.status == OutboundMessage.Status.PENDING
    ]
    return _send(iter(held), owner)


def _send(outbounds: Iterator[OutboundMessage | None], owner: str) -> dict[str, int]:
    counts = {"sent": 0, "retry": 0, "failed": 0}
    mailer = None
    try:
        for outbound in outbounds:
            if outbound is None:
                continue  # another sender has it
            try:
                if mailer is None:
                    mailer = get_mailer()
                if not mailer.send_messages([StoredEmail(outbound)]):
                    raise RuntimeError("the mail backend sent nothing")
            except Exception as exc:
                counts[_failed(outbound, exc, owner)] += 1
            else:
                _sent(outbound, owner)
                counts["sent"] += 1
    finally:
        if mailer is not None:
            try:
                mailer.close()
            except Exception:
                logger.exception("Could not close the mail connection")
    return counts


def _claim(pk, owner: str, using: str) -> OutboundMessage | None:
    now = timezone.now()
    claimed = (
        OutboundMessage.objects.using(using)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now), pk=pk)
        .filter(status=OutboundMessage.Status.PENDING)
        .update(lease_owner=owner, lease_expires_at=now + duration("MAIL_OUTBOX_LEASE"))
    )
    if not claimed:
        return None
    return OutboundMessage.objects.using(using).get(pk=pk)


def _sent(outbound: OutboundMessage, owner: str) -> None:
    updated = (
        OutboundMessage.objects.using(outbound._state.db)
        .filter(pk=outbound.pk, lease_owner=owner)
        .update(
            status=OutboundMessage.Status.SENT,
            sent_at=timezone.now(),
            attempts=F("attempts") + 1,
            lease_owner="",
            lease_expires_at=None,
        )
    )
    if not updated:
        logger.warning(
            "Reply %s was sent after its lease expired; another sender may send it too",
            outbound.pk,
        )


def retry_delay(attempts: int):
    """Exponential backoff: the first retry after MAIL_OUTBOX_RETRY_DELAY, then doubling."""
    first = duration("MAIL_OUTBOX_RETRY_DELAY")
    return min(first * 2 ** max(attempts - 1, 0), duration("MAIL_OUTBOX_MAX_RETRY_DELAY"))


def _failed(outbound: OutboundMessage, exc: Exception, owner: str) -> str:
    now = timezone.now()
    attempts = outbound.attempts + 1
    error = storable(f"{type(exc).__name__}: {exc}")
    gave_up = now - outbound.created_at >= duration("MAIL_OUTBOX_MAX_AGE")
    OutboundMessage.objects.using(outbound._state.db).filter(
        pk=outbound.pk, lease_owner=owner
    ).update(
        status=OutboundMessage.Status.FAILED if gave_up else OutboundMessage.Status.PENDING,
        attempts=attempts,
        last_error=error,
        next_attempt_at=now + retry_delay(attempts),
        lease_owner="",
        lease_expires_at=None,
    )
    if not gave_up:
        logger.warning("Could not send reply %s (attempt %d): %s", outbound.pk, attempts, error)
        return "retry"
    logger.error("Gave up sending reply %s after %d attempts: %s", outbound.pk, attempts, error)
    try:
        mail_admins(
            f"Reply not sent: {outbound.subject}"[:200],
            f"The reply {outbound.message_id} to {', '.join(outbound.recipients)} could not be "
            f"sent in {attempts} attempts since {outbound.created_at:%Y-%m-%d %H:%M %Z}, "
            f"and was given up.\n\nLast error: {error}\n",
        )
    except Exception:
        logger.exception("Could not tell ADMINS about reply %s", outbound.pk)
    return "failed"


class StoredEmail(EmailMessage):
    """
    A reply from the outbox, for a Django mail backend. Backends that send
    ``message()`` (SMTP, console, file, locmem) send the stored bytes as
    they are; the attributes (subject, body, to, ...) are read back from
    them for backends and tests that look at those instead.

    They are read back when one is first asked for, not before: parsing
    every header with the email package's modern policy costs more than
    the rest of a reply's way out (about 15 ms), and the backends that send
    ``message()`` never ask.
    """

    _READ_BACK = ("subject", "body", "to", "cc", "bcc", "reply_to", "extra_headers")

    def __init__(self, outbound: OutboundMessage):
        super().__init__(from_email=outbound.sender)
        for name in self._READ_BACK:
            del self.__dict__[name]  # found by __getattr__, from the bytes
        self.outbound = outbound
        self._raw = bytes(outbound.raw)

    def __getattr__(self, name):
        # Called only for what the instance lacks: the attributes not yet read back.
        if name not in StoredEmail._READ_BACK or "_raw" not in self.__dict__:
            raise AttributeError(name)
        self.__dict__.update(self._read_back())
        return self.__dict__[name]

    def _read_back(self) -> dict:
        parsed = email.message_from_bytes(self._raw, policy=email.policy.default)
        to, cc, reply_to = (_addresses(parsed, name) for name in ("To", "Cc", "Reply-To"))
        shown = {_address(a).lower() for a in (*to, *cc)}  # To: Ann <ann@...> shows ann@...
        body = parsed.get_body(("plain",))
        read = {
            "subject": str(parsed["Subject"] or ""),
            "body": body.get_content() if body is not None else "",
            "to": to,
            "cc": cc,
            "bcc": [r for r in self.outbound.recipients if _address(r).lower() not in shown],
            "reply_to": reply_to,
            "extra_headers": {
                name: str(value)
                for name, value in parsed.items()
                if name.lower() not in _STRUCTURAL
            },
        }
        # What was set since (a backend may change an attribute) stays.
        return {name: value for name, value in read.items() if name not in self.__dict__}

    def recipients(self):
        return list(self.outbound.recipients)

    def message(self, *args, policy=None, **kwargs):
        return _StoredMIME(self._raw, policy or email.policy.default)


_STRUCTURAL = {
    "from",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "subject",
    "content-type",
    "content-transfer-encoding",
    "mime-version",
}


def _addresses(message, name: str) -> list[str]:
    return [
        email.utils.formataddr(pair)
        for pair in email.utils.getaddresses([str(v) for v in message.get_all(name, [])])
        if pair[1]
    ]


def _address(value: str) -> str:
    return email.utils.parseaddr(value)[1]


class _StoredMIME(email.message.EmailMessage):
    """
    The reply as a message object, serialised as the bytes it stands for,
    and parsed from them only when something other than its bytes is asked
    for: the SMTP, file and console backends want only the bytes, and
    parsing a reply costs more than the rest of its way out. Everything
    Message.__init__ would set is missing until then, and found by
    __getattr__ (which Python calls for missing attributes only).
    """

    def __init__(self, stored: bytes, policy):
        # Message.__init__ is not called: what it sets comes from the parse.
        self.policy = policy
        self.stored = stored

    def __getattr__(self, name):
        stored = self.__dict__.get("stored")
        if stored is None or name.startswith("__"):
            raise AttributeError(name)
        parsed = email.parser.BytesParser(policy=self.policy).parsebytes(stored)
        for key, value in vars(parsed).items():
            self.__dict__.setdefault(key, value)
        if name not in self.__dict__:
            raise AttributeError(name)
        return self.__dict__[name]

    def get_charset(self):
        # What a parsed message says (the parser sets no charset on the
        # message object), without parsing it: the file and console
        # backends ask.
        return None

    def as_bytes(self, unixfrom=False, policy=None, linesep=None):
        ending = (linesep or (policy or self.policy).linesep).encode("ascii")
        return re.sub(rb"\r?\n", ending, self.stored)

    __bytes__ = as_bytes

    def as_string(self, unixfrom=False, maxheaderlen=0, policy=None):
        return self.as_bytes(policy=policy).decode("utf-8", "surrogateescape")
