"""
The store's records: each inbound message for one recipient, each attempt
to handle it, and the outbox of replies.

The statuses and the lease fields serve two ways of processing: inline (the
view runs while the MTA waits, and its answer is the view's outcome) and
queued (the MTA gets 250 once the message is stored; a worker claims it
under a lease and runs the view later, retrying at ``next_attempt_at``).
"""

from __future__ import annotations

import io

from django.db import models
from django.utils import timezone

from ..status import Outcome


def storable(value: str | None, limit: int | None = None) -> str:
    """
    ``value`` as any database will take it: envelope values come from the
    command line (undecodable bytes arrive as lone surrogates) and header
    values from the sender (a NUL, which PostgreSQL refuses in text), so
    both become U+FFFD. Cut to ``limit`` characters for a bounded column.
    """
    if not value:
        return ""
    value = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    value = value.replace("\x00", "\ufffd")
    return value[:limit] if limit is not None else value


class InboundMessage(models.Model):
    """One message for one envelope recipient: what came, and what became of it."""

    class Status(models.TextChoices):
        # Stored; not handled yet, or its last run was cut short (killed,
        # out of time) before it could record anything.
        RECEIVED = "received"
        # Claimed by a worker whose lease has not expired (queued mode).
        PROCESSING = "processing"
        # The last run ended in a temporary failure; it will be tried again.
        DEFERRED = "deferred"
        # Final: delivered, ignored or discarded.
        PROCESSED = "processed"
        # Final: refused for the sender's fault (unknown recipient, ...).
        BOUNCED = "bounced"
        # Final: we gave up (queued mode, past its maximum age).
        FAILED = "failed"

    FINISHED = (Status.PROCESSED, Status.BOUNCED, Status.FAILED)

    # See mailserver.store.keys: recipient and content, trace headers aside.
    idempotency_key = models.CharField(max_length=64, unique=True, editable=False)

    # The envelope, as the transport gave it. sender "" is the null sender
    # of a bounce; None means the transport did not say.
    sender = models.TextField(null=True, blank=True)
    recipient = models.TextField()
    original_recipient = models.TextField(blank=True)
    queue_id = models.CharField(max_length=64, blank=True)
    client_address = models.CharField(max_length=64, blank=True)
    transport = models.CharField(max_length=16, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    # The raw message's name in the "mailserver" storage (content-addressed,
    # shared by the recipients of one message). A small one (see
    # MAIL_STORE_ROW_LIMIT) is kept in ``raw`` instead, durable with the
    # row, and no file has the name; ``raw`` is None otherwise. The name
    # still says which rows hold the same bytes. See open_raw().
    raw_name = models.CharField(max_length=255)
    raw = models.BinaryField(null=True, blank=True, editable=False)

    # For people: from the headers, once the message has been parsed.
    message_id = models.CharField(max_length=255, blank=True)
    subject = models.CharField(max_length=255, blank=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    # The Outcome's name (mailserver.status), its enhanced code and the text
    # of the status line: what the MTA was told, and is told again.
    outcome = models.CharField(max_length=32, blank=True)
    enhanced_code = models.CharField(max_length=16, blank=True)
    status_text = models.TextField(blank=True)
    route = models.CharField(max_length=255, blank=True)
    # Runs that reached an end (a final outcome or a temporary failure).
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    received_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Queued mode: when to try a deferred message again, and who holds it
    # until when (an expired lease may be taken over).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Named, not found from the module: mailserver.store's models
        # would otherwise count as mailserver's where the store is imported
        # without being installed (a test suite that installs it per test).
        app_label = "mailserver_store"
        verbose_name = "inbound message"
        ordering = ["-received_at"]
        # What the admin lets a person do besides looking (see admin/): each
        # its own permission, as each does something else to real mail.
        permissions = [
            ("replay_inboundmessage", "Can replay an inbound message (its view runs again)"),
            ("reroute_inboundmessage", "Can dispatch an inbound message to another address"),
            ("incinerate_inboundmessage", "Can incinerate an inbound message and its raw file"),
            ("use_conductor", "Can send messages through the conductor"),
        ]
        indexes = [
            # The admin's list: newest first, filtered by status, outcome, route.
            models.Index(fields=["-received_at"], name="mailstore_in_received"),
            models.Index(fields=["status", "-received_at"], name="mailstore_in_status"),
            models.Index(fields=["outcome", "-received_at"], name="mailstore_in_outcome"),
            models.Index(fields=["route", "-received_at"], name="mailstore_in_route"),
            # The retention sweep, and queued mode's pick-up and reclaim.
            models.Index(fields=["status", "finished_at"], name="mailstore_in_finished"),
            models.Index(fields=["status", "next_attempt_at"], name="mailstore_in_next"),
            models.Index(fields=["status", "lease_expires_at"], name="mailstore_in_lease"),
            # Whether a raw file is still referenced.
            models.Index(fields=["raw_name"], name="mailstore_in_raw"),
        ]

    def __str__(self) -> str:
        return f"{self.subject or '(no subject)'} to <{self.recipient}> ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def outcome_member(self) -> Outcome | None:
        return Outcome[self.outcome.upper()] if self.outcome else None

    def first_run(self) -> InboundAttempt:
        """
        The run that finished the message at its first attempt, as its
        record tells it (unsaved): the store writes no attempt for a first
        run that succeeds, whose row says all of it. Started when the
        message was received; its transport and queue id are the first
        delivery's, which wrote the row.
        """
        return InboundAttempt(
            message=self,
            started_at=self.received_at,
            finished_at=self.finished_at or self.updated_at,
            transport=self.transport,
            queue_id=self.queue_id,
            outcome=self.outcome,
            enhanced_code=self.enhanced_code,
            status_text=self.status_text,
        )

    def attempt_history(self) -> list[InboundAttempt]:
        """
        Every attempt, oldest first: the recorded ones, after the first run
        when it left no attempt of its own (a finished message with no run
        recorded: see :meth:`first_run`).
        """
        attempts = list(self.history.all())
        if self.is_finished and self.attempts and all(a.replayed for a in attempts):
            attempts.insert(0, self.first_run())
        return attempts

    def open_raw(self):
        """The raw message, as a binary file: from the row, or from the storage."""
        if self.raw is not None:
            return io.BytesIO(bytes(self.raw))
        from .storage import get_storage

        return get_storage().open(self.raw_name, "rb")

    def envelope(self):
        """The envelope it came with: what a worker hands to the view later."""
        from ..envelope import Envelope

        return Envelope(
            sender=self.sender,
            recipient=self.recipient,
            original_recipient=self.original_recipient,
            queue_id=self.queue_id,
            client_address=self.client_address,
            size=self.size,
            transport=self.transport,
        )


class InboundAttempt(models.Model):
    """
    One time a transport handed the message over and got an answer: a run
    of the view, or a replay of the recorded outcome. A run cut short before
    its commit leaves no attempt.
    """

    message = models.ForeignKey(InboundMessage, models.CASCADE, related_name="history")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(default=timezone.now)
    transport = models.CharField(max_length=16, blank=True)
    queue_id = models.CharField(max_length=64, blank=True)
    # True: the message was finished already; its recorded outcome was given.
    replayed = models.BooleanField(default=False)
    outcome = models.CharField(max_length=32)
    enhanced_code = models.CharField(max_length=16)
    status_text = models.TextField(blank=True)
    error = models.TextField(blank=True)

    class Meta:
        # Named, not found from the module: mailserver.store's models
        # would otherwise count as mailserver's where the store is imported
        # without being installed (a test suite that installs it per test).
        app_label = "mailserver_store"
        verbose_name = "inbound attempt"
        ordering = ["started_at"]

    def __str__(self) -> str:
        what = f"{self.outcome}, replayed" if self.replayed else self.outcome
        return f"Message #{self.message_id}: {what} at {self.started_at:%Y-%m-%d %H:%M:%S}"


class OutboundMessage(models.Model):
    """
    A reply or failure notice, written in the transaction of the view that
    made it and sent after the commit; retried until sent or too old.
    """

    class Kind(models.TextChoices):
        REPLY = "reply", "reply"
        NOTICE = "notice", "failure notice"

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    inbound = models.ForeignKey(
        InboundMessage, models.CASCADE, related_name="replies", null=True, blank=True
    )
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.REPLY)
    # The message exactly as it will be sent, Message-ID and Date included:
    # every attempt sends the same bytes, so a receiver can tell a resend.
    raw = models.BinaryField()
    message_id = models.CharField(max_length=255, blank=True)
    # The SMTP envelope: MAIL FROM and RCPT TO (Bcc included).
    sender = models.TextField(blank=True)
    recipients = models.JSONField(default=list)
    subject = models.CharField(max_length=255, blank=True)

    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Named, not found from the module: mailserver.store's models
        # would otherwise count as mailserver's where the store is imported
        # without being installed (a test suite that installs it per test).
        app_label = "mailserver_store"
        verbose_name = "outbound message"
        ordering = ["-created_at"]
        permissions = [("resend_outboundmessage", "Can resend a reply that was not sent")]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="mailstore_out_due"),
            models.Index(fields=["-created_at"], name="mailstore_out_created"),
        ]

    def __str__(self) -> str:
        to = ", ".join(self.recipients) or "nobody"
        return f"{self.get_kind_display().capitalize()} to {to}: {self.subject} ({self.status})"
