"""The reply outbox: sent after the commit, retried with backoff, never twice at once."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.core.management import call_command
from django.utils import timezone

from mailserver import Outcome
from mailserver.store import outbox
from mailserver.store.models import OutboundMessage
from mailserver.test import Client
from tests.mail import HAS_MAILERS, LOCMEM, RecordingBackend, use_backend

pytestmark = pytest.mark.django_db

MESSAGE = b"From: Ann <ann@example.org>\nSubject: Printer\nMessage-ID: <o1@example.org>\n\nHelp\n"


def send(message=MESSAGE, recipient="help@desk.example.com", sender="ann@example.org"):
    return Client().send(message, recipient=recipient, sender=sender)


@pytest.fixture
def smtp_server():
    """A real SMTP server on a spare port, keeping what it receives."""
    from aiosmtpd.controller import Controller

    class Keep:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            self.messages.append((envelope.mail_from, envelope.rcpt_tos, envelope.content))
            return "250 OK"

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Keep()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, handler.messages
    finally:
        controller.stop()


def test_replies_leave_through_the_reply_mailer(settings):
    """The mailer MAIL_REPLY_MAILER names on Django 6.1+; EMAIL_BACKEND before."""
    RecordingBackend.sent = []
    recording = "tests.mail.RecordingBackend"
    if HAS_MAILERS:
        settings.MAILERS = {"default": {"BACKEND": LOCMEM}, "replies": {"BACKEND": recording}}
        settings.MAIL_REPLY_MAILER = "replies"
    else:
        use_backend(settings, recording)
    assert send().outcome is Outcome.DELIVERED
    [reply] = RecordingBackend.sent
    assert reply.message().as_bytes() == bytes(OutboundMessage.objects.get(status="sent").raw)
    assert mail.outbox == []


def test_over_smtp_the_stored_bytes_are_sent_and_a_retry_sends_the_same(settings, smtp_server):
    port, received = smtp_server
    smtp = "django.core.mail.backends.smtp.EmailBackend"
    use_backend(settings, smtp, host="127.0.0.1", port=1)  # nothing listens there
    settings.MAIL_OUTBOX_RETRY_DELAY = 0
    assert send().outcome is Outcome.DELIVERED
    reply = OutboundMessage.objects.get()
    assert (reply.status, reply.attempts) == ("pending", 1)
    assert "ConnectionRefusedError" in reply.last_error
    use_backend(settings, smtp, host="127.0.0.1", port=port)
    assert outbox.send_due() == {"sent": 1, "retry": 0, "failed": 0}
    [(mail_from, rcpt_tos, content)] = received
    assert (mail_from, rcpt_tos) == ("mailer-daemon@example.com", ["ann@example.org"])
    assert content == bytes(reply.raw).replace(b"\n", b"\r\n")
    assert f"Message-ID: {reply.message_id}".encode() in content
    reply.refresh_from_db()
    assert (reply.status, reply.attempts) == ("sent", 2)
    assert outbox.send_due() == {"sent": 0, "retry": 0, "failed": 0}


class RacingBackend(LocmemBackend):
    """While it sends, a second sender looks at the outbox."""

    seen = []

    def send_messages(self, messages):
        self.seen.append(outbox.send_due())
        return super().send_messages(messages)


def test_a_sender_that_comes_while_another_sends_leaves_the_reply_alone(settings):
    use_backend(settings, "tests.store.backends.DownBackend")
    settings.MAIL_OUTBOX_RETRY_DELAY = 0
    send()
    use_backend(settings, f"{__name__}.RacingBackend")
    RacingBackend.seen = []
    assert outbox.send_due()["sent"] == 1
    # The second sender found the reply claimed, due as it was.
    assert RacingBackend.seen == [{"sent": 0, "retry": 0, "failed": 0}]
    assert len(mail.outbox) == 1


def test_an_expired_lease_is_taken_over(settings):
    use_backend(settings, "tests.store.backends.DownBackend")
    settings.MAIL_OUTBOX_RETRY_DELAY = 0
    send()
    reply = OutboundMessage.objects.get()
    # A sender claimed it and died.
    OutboundMessage.objects.filter(pk=reply.pk).update(
        lease_owner="dead:1:x", lease_expires_at=timezone.now() + timedelta(minutes=5)
    )
    use_backend(settings, "django.core.mail.backends.locmem.EmailBackend")
    assert outbox.send_due()["sent"] == 0
    OutboundMessage.objects.filter(pk=reply.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert outbox.send_due()["sent"] == 1
    reply.refresh_from_db()
    assert (reply.status, reply.lease_owner, reply.lease_expires_at) == ("sent", "", None)


def test_failed_sends_back_off_exponentially(settings):
    settings.MAIL_OUTBOX_RETRY_DELAY = 60
    settings.MAIL_OUTBOX_MAX_RETRY_DELAY = timedelta(minutes=10)
    assert [outbox.retry_delay(n).total_seconds() for n in range(1, 7)] == [
        60,
        120,
        240,
        480,
        600,
        600,
    ]


def test_a_retry_waits_for_its_time(settings):
    use_backend(settings, "tests.store.backends.DownBackend")
    send()
    use_backend(settings, "django.core.mail.backends.locmem.EmailBackend")
    assert outbox.send_due()["sent"] == 0  # due in a minute
    OutboundMessage.objects.update(next_attempt_at=timezone.now())
    assert outbox.send_due()["sent"] == 1


class RefusingBackend(LocmemBackend):
    """Delivers to the test outbox, except to addresses at unreachable.example."""

    def send_messages(self, messages):
        for message in messages:
            if any(r.endswith("@unreachable.example") for r in message.recipients()):
                raise ConnectionRefusedError("recipient's server unreachable")
        return super().send_messages(messages)


def test_a_reply_too_old_is_given_up_and_admins_are_told(settings):
    use_backend(settings, f"{__name__}.RefusingBackend")
    settings.MAIL_OUTBOX_RETRY_DELAY = 0
    send(sender="bob@unreachable.example")
    reply = OutboundMessage.objects.get()
    assert reply.status == "pending" and not mail.outbox
    assert outbox.send_due() == {"sent": 0, "retry": 1, "failed": 0}
    OutboundMessage.objects.update(created_at=timezone.now() - timedelta(days=5, seconds=1))
    assert outbox.send_due() == {"sent": 0, "retry": 0, "failed": 1}
    reply.refresh_from_db()
    assert (reply.status, reply.attempts) == ("failed", 3)
    [admin] = mail.outbox
    assert admin.to == ["admin@example.com"]
    assert admin.subject.startswith("[Django] Reply not sent: [#")
    assert "recipient's server unreachable" in admin.body
    assert outbox.send_due() == {"sent": 0, "retry": 0, "failed": 0}


def test_sendreplies_sends_what_is_due(settings, capsys):
    use_backend(settings, "tests.store.backends.DownBackend")
    settings.MAIL_OUTBOX_RETRY_DELAY = 0
    send()
    use_backend(settings, "django.core.mail.backends.locmem.EmailBackend")
    call_command("sendreplies")
    assert capsys.readouterr().out == "Sent 1, to retry 0, given up 0.\n"
    assert len(mail.outbox) == 1
    call_command("sendreplies")
    assert capsys.readouterr().out == "Sent 0, to retry 0, given up 0.\n"


def test_sendreplies_flush_sends_what_waits_for_its_retry_time(settings, capsys):
    use_backend(settings, "tests.store.backends.DownBackend")
    send()
    use_backend(settings, "django.core.mail.backends.locmem.EmailBackend")
    call_command("sendreplies")
    assert capsys.readouterr().out == "Sent 0, to retry 0, given up 0.\n"
    call_command("sendreplies", "--flush")
    assert capsys.readouterr().out == "Sent 1, to retry 0, given up 0.\n"
    assert len(mail.outbox) == 1


def test_a_run_sends_only_the_replies_it_still_holds():
    """send_held trusts what its run wrote, but not a lease that has run out or another's."""
    now = timezone.now()
    owner = outbox.lease_owner()

    def written(**fields):
        return OutboundMessage.objects.create(
            raw=b"To: ann@example.org\nSubject: x\nMessage-ID: <h@example.org>\n\nok\n",
            sender="help@desk.example.com",
            recipients=["ann@example.org"],
            **{"lease_owner": owner, "lease_expires_at": now + timedelta(minutes=5), **fields},
        )

    held = written()
    expired = written(lease_expires_at=now - timedelta(seconds=1))
    taken = written(lease_owner="another sender")
    counts = outbox.send_held([held, expired, taken], owner)
    assert counts == {"sent": 1, "retry": 0, "failed": 0}
    assert len(mail.outbox) == 1
    statuses = dict(OutboundMessage.objects.values_list("pk", "status"))
    assert statuses == {held.pk: "sent", expired.pk: "pending", taken.pk: "pending"}


def test_a_stored_reply_reads_its_attributes_back_only_when_asked():
    reply = OutboundMessage(
        raw=b"To: Ann <ann@example.org>\nCc: bob@example.org\nSubject: =?utf-8?q?R=C3=A9?=\n"
        b"Message-ID: <r@example.org>\n\nBody\n",
        sender="help@desk.example.com",
        recipients=["ann@example.org", "bob@example.org", "carol@example.org"],
    )
    stored = outbox.StoredEmail(reply)
    assert "subject" not in vars(stored)
    mime = stored.message()
    assert mime.as_bytes() == reply.raw  # what the SMTP and file backends send
    assert mime.as_bytes(linesep="\r\n") == reply.raw.replace(b"\n", b"\r\n")
    assert mime.get_charset() is None  # the file backend asks; a parsed message has none
    assert "subject" not in vars(stored) and "_headers" not in vars(mime)  # nothing parsed
    assert (mime["Subject"], mime.get_content_type()) == ("Ré", "text/plain")  # parsed now
    assert mime.get_body(("plain",)).get_content() == "Body\n"
    stored.to = ["changed@example.org"]  # set before the rest is read: it stays
    assert (stored.subject, stored.body, stored.cc) == ("Ré", "Body\n", ["bob@example.org"])
    assert stored.to == ["changed@example.org"] and stored.bcc == ["carol@example.org"]
    assert stored.extra_headers == {"Message-ID": "<r@example.org>"}
