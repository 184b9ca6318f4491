"""
Exactly once, in process: a message is handled once per recipient and
content, its view's work, status and replies commit together, and a
redelivery is answered from the record.
"""

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mailserver import Outcome
from mailserver.store.handler import RecordedResult
from mailserver.store.models import InboundAttempt, InboundMessage, OutboundMessage
from mailserver.test import Client
from tests.mail import use_backend
from tests.mailapp.models import Comment, Ticket

pytestmark = pytest.mark.django_db

MESSAGE = (
    b"From: Ann <ann@example.org>\n"
    b"To: help@desk.example.com\n"
    b"Subject: Printer on fire\n"
    b"Message-ID: <h1@example.org>\n"
    b"\n"
    b"Help!\n"
)


def send(message=MESSAGE, recipient="help@desk.example.com", **envelope):
    """Dispatch as the MTA would see it: a view's bug comes back as 4.3.0, not raised."""
    envelope.setdefault("sender", "ann@example.org")
    return Client(raise_request_exception=False).send(message, recipient=recipient, **envelope)


def test_a_message_is_stored_with_its_envelope_and_outcome():
    result = send(queue_id="4QX1", client_address="192.0.2.1", original_recipient="a@b.c")
    assert result.outcome is Outcome.DELIVERED
    inbound = InboundMessage.objects.get()
    assert (inbound.sender, inbound.recipient, inbound.original_recipient) == (
        "ann@example.org",
        "help@desk.example.com",
        "a@b.c",
    )
    assert (inbound.queue_id, inbound.client_address, inbound.transport, inbound.size) == (
        "4QX1",
        "192.0.2.1",
        "test",
        len(MESSAGE),
    )
    assert (inbound.message_id, inbound.subject) == ("<h1@example.org>", "Printer on fire")
    assert (inbound.status, inbound.outcome, inbound.enhanced_code, inbound.status_text) == (
        "processed",
        "delivered",
        "2.0.0",
        "delivered",
    )
    assert (inbound.route, inbound.attempts, inbound.last_error) == ("open-ticket", 1, "")
    assert inbound.finished_at >= inbound.received_at
    assert inbound.open_raw().read() == MESSAGE
    assert str(inbound) == "Printer on fire to <help@desk.example.com> (processed)"


def test_a_redelivery_is_answered_from_the_record_without_running_the_view():
    first = send()
    again = send(queue_id="second-try")
    assert Ticket.objects.count() == 1
    assert len(mail.outbox) == 1
    assert isinstance(again, RecordedResult) and not isinstance(first, RecordedResult)
    assert (again.outcome, again.reply(), again.route) == (
        first.outcome,
        first.reply(),
        "open-ticket",
    )
    inbound = InboundMessage.objects.get()
    assert inbound.attempts == 1
    history = [(a.replayed, a.queue_id, a.outcome) for a in inbound.attempt_history()]
    assert history == [(False, "", "delivered"), (True, "second-try", "delivered")]
    # The first run succeeded: the message's row is its record, and the
    # answer from the record is the one attempt written.
    assert list(inbound.history.values_list("replayed", flat=True)) == [True]


def test_a_new_message_writes_its_row_once_and_reads_nothing_back():
    """
    What the store adds to a new message's way, in statements: its row
    inserted (which locks it), the reply written, the row finished, the
    reply marked sent. No read of the row just written, no attempt row for
    a first run that succeeds.
    """
    with CaptureQueriesContext(connection) as queries:
        assert send().outcome is Outcome.DELIVERED
    store = [
        q["sql"].split(" ", 1)[0] + " " + table
        for q in queries
        for table in (
            "inboundmessage",
            "inboundattempt",
            "outboundmessage",
        )
        if f"mailserver_store_{table}" in q["sql"]
    ]
    assert store == [
        "INSERT inboundmessage",
        "INSERT outboundmessage",
        "UPDATE inboundmessage",
        "UPDATE outboundmessage",
    ]
    inbound = InboundMessage.objects.get()
    assert not inbound.history.exists()
    (first,) = inbound.attempt_history()
    assert (first.replayed, first.transport, first.outcome, first.status_text) == (
        False,
        "test",
        "delivered",
        "delivered",
    )
    assert first.started_at == inbound.received_at and first.finished_at == inbound.finished_at


def test_a_small_message_is_kept_in_its_row_a_larger_one_in_a_file(store, settings):
    settings.MAIL_STORE_ROW_LIMIT = len(MESSAGE)
    send()
    small = InboundMessage.objects.get()
    assert bytes(small.raw) == MESSAGE and not (store / small.raw_name).exists()
    settings.MAIL_STORE_ROW_LIMIT = len(MESSAGE) - 1
    send(recipient="other@desk.example.com")
    large = InboundMessage.objects.exclude(pk=small.pk).get()
    assert large.raw is None and (store / large.raw_name).read_bytes() == MESSAGE
    assert large.raw_name == small.raw_name
    assert small.open_raw().read() == large.open_raw().read() == MESSAGE


def test_an_upstream_resend_with_more_trace_headers_is_the_same_message():
    send()
    resent = (
        b"Received: from mx2.example.org by mail.example.com with ESMTP id 5RY2;\n"
        b"\tTue, 1 Dec 2026 10:05:00 +0000\n"
        b"Return-Path: <ann@example.org>\n" + MESSAGE.replace(b"\n", b"\r\n")
    )
    assert send(resent).outcome is Outcome.DELIVERED
    assert Ticket.objects.count() == 1 and InboundMessage.objects.count() == 1


def test_two_messages_sharing_a_message_id_are_both_handled():
    send()
    send(MESSAGE.replace(b"Help!", b"Also the fax."))
    assert Ticket.objects.count() == 2
    assert InboundMessage.objects.filter(message_id="<h1@example.org>").count() == 2
    assert len(mail.outbox) == 2


def test_one_message_to_two_recipients_is_handled_for_each():
    send(recipient="help@desk.example.com")
    send(recipient="quiet@desk.example.com")
    assert Ticket.objects.count() == 2
    assert InboundMessage.objects.count() == 2


def test_a_temporary_failure_rolls_back_the_view_and_records_the_attempt():
    result = send(recipient="flaky@desk.example.com")
    assert result.outcome is Outcome.TEMPORARY_FAILURE
    assert not Ticket.objects.exists()
    assert not OutboundMessage.objects.exists()
    inbound = InboundMessage.objects.get()
    assert (inbound.status, inbound.outcome, inbound.attempts) == (
        "deferred",
        "temporary_failure",
        1,
    )
    assert "RuntimeError: the view fails on its first run" in inbound.last_error
    assert inbound.finished_at is None
    # The retry runs the view afresh, once.
    assert send(recipient="flaky@desk.example.com").outcome is Outcome.DELIVERED
    assert Ticket.objects.count() == 1
    inbound.refresh_from_db()
    assert (inbound.status, inbound.attempts) == ("processed", 2)
    assert list(inbound.history.values_list("outcome", flat=True)) == [
        "temporary_failure",
        "delivered",
    ]
    # One reply; the first run's error went to ADMINS.
    assert [m.to for m in mail.outbox] == [["admin@example.com"], ["ann@example.org"]]


def test_a_deferring_view_leaves_nothing_of_its_work():
    ticket = Ticket.objects.create(subject="x")
    result = send(recipient=f"atomic-{ticket.pk}@example.com")
    assert (result.outcome, result.dsn_line()) == (Outcome.TEMPORARY_FAILURE, "4.3.0 not now")
    assert not Comment.objects.exists()
    inbound = InboundMessage.objects.get()
    assert (inbound.status, inbound.status_text, inbound.last_error) == (
        "deferred",
        "not now",
        "4.3.0 not now",
    )


def test_a_bounced_message_is_bounced_again_from_the_record():
    first = send(recipient="nobody@example.com")
    again = send(recipient="nobody@example.com")
    assert first.outcome is again.outcome is Outcome.UNKNOWN_RECIPIENT
    assert again.dsn_line() == first.dsn_line() == "5.1.1 <nobody@example.com>: no such mailbox"
    inbound = InboundMessage.objects.get()
    assert (inbound.status, inbound.enhanced_code, inbound.attempts) == ("bounced", "5.1.1", 1)
    assert inbound.history.filter(replayed=True).count() == 1


def test_a_refusing_view_is_not_run_again():
    send(recipient="refuse@example.com")
    again = send(recipient="refuse@example.com")
    assert again.dsn_line() == "5.7.0 no attachments here"
    assert InboundAttempt.objects.filter(replayed=False).count() == 1


def test_the_reply_is_written_to_the_outbox_and_sent_after_the_commit():
    result = send()
    assert result.reply_sent
    reply = OutboundMessage.objects.get()
    assert (reply.kind, reply.status, reply.attempts) == ("reply", "sent", 1)
    assert reply.recipients == ["ann@example.org"]
    assert reply.inbound == InboundMessage.objects.get()
    assert reply.subject.startswith("[#") and reply.message_id.startswith("<")
    [sent] = mail.outbox
    assert sent.message().as_bytes() == bytes(reply.raw)
    assert sent.to == ["ann@example.org"]
    assert sent.subject == reply.subject
    assert sent.reply_to == [f"ticket-{Ticket.objects.get().pk}@desk.example.com"]
    assert sent.extra_headers["Message-ID"] == reply.message_id
    assert sent.extra_headers["In-Reply-To"] == "<h1@example.org>"
    assert str(reply).startswith("Reply to ann@example.org: [#")


def test_a_reply_that_cannot_be_sent_never_defers_the_message(settings):
    use_backend(settings, "tests.store.backends.DownBackend")
    result = send()
    assert result.outcome is Outcome.DELIVERED
    assert not result.reply_sent
    assert InboundMessage.objects.get().status == "processed"
    reply = OutboundMessage.objects.get()
    assert (reply.status, reply.attempts) == ("pending", 1)
    assert reply.last_error == "ConnectionRefusedError: the outgoing mail server is down"
    assert reply.next_attempt_at > reply.created_at
    assert Ticket.objects.count() == 1


def test_a_failure_notice_goes_through_the_outbox(settings):
    settings.MAIL_FAILURE_NOTICES = True
    result = send(recipient="refuse@example.com")
    assert result.notice_sent
    notice = OutboundMessage.objects.get()
    assert (notice.kind, notice.status) == ("notice", "sent")
    assert notice.recipients == ["ann@example.org"]
    assert str(notice).startswith("Failure notice to ann@example.org")
    # Bounced again from the record: no second notice.
    send(recipient="refuse@example.com")
    assert OutboundMessage.objects.count() == 1 and len(mail.outbox) == 1


def test_without_an_envelope_recipient_the_headers_give_it():
    message = b"Delivered-To: help@desk.example.com\n" + MESSAGE
    send(message, recipient="")
    send(message.replace(b"Delivered-To: help@", b"Delivered-To: quiet@"), recipient="")
    assert sorted(InboundMessage.objects.values_list("recipient", flat=True)) == [
        "help@desk.example.com",
        "quiet@desk.example.com",
    ]


def test_signals_see_each_delivery(db):
    from mailserver import signals

    seen = []

    def handled(sender, request, result, **kwargs):
        seen.append((type(result).__name__, result.outcome))

    signals.message_handled.connect(handled)
    try:
        send()
        send()
    finally:
        signals.message_handled.disconnect(handled)
    assert seen == [("Result", Outcome.DELIVERED), ("RecordedResult", Outcome.DELIVERED)]


def test_a_stored_message_gives_back_its_envelope():
    send(queue_id="Q1", client_address="192.0.2.9", original_recipient="alias@example.com")
    envelope = InboundMessage.objects.get().envelope()
    assert (envelope.sender, envelope.recipient, envelope.original_recipient) == (
        "ann@example.org",
        "help@desk.example.com",
        "alias@example.com",
    )
    assert (envelope.queue_id, envelope.client_address, envelope.size, envelope.transport) == (
        "Q1",
        "192.0.2.9",
        len(MESSAGE),
        "test",
    )


@pytest.mark.parametrize(
    "recipient",
    [
        "help\udcff@desk.example.com",  # an undecodable byte on the command line
        "help\x00@desk.example.com",
        "\x00",
    ],
)
def test_a_recipient_no_database_takes_as_it_is_still_gets_its_bounce(recipient):
    first = send(recipient=recipient)
    assert first.outcome is Outcome.BAD_RECIPIENT
    assert send(recipient=recipient).dsn_line() == first.dsn_line()
    inbound = InboundMessage.objects.get()
    assert inbound.status == "bounced" and "\ufffd" in inbound.recipient


def test_header_values_no_database_takes_as_they_are_are_recorded_all_the_same(settings):
    settings.MAIL_FAILURE_NOTICES = True
    hostile = MESSAGE.replace(b"Subject: Printer on fire", b"Subject: Printer\x00on fire")
    hostile = hostile.replace(b"<h1@example.org>", b"<h\x00\xff1@example.org>")
    assert send(hostile, recipient="refuse@example.com").outcome is Outcome.REJECTED
    inbound = InboundMessage.objects.get()
    assert inbound.status == "bounced"
    assert inbound.subject == "Printer\ufffdon fire"
    notice = OutboundMessage.objects.get()
    assert (notice.status, notice.subject) == ("sent", "Re: Printer\ufffdon fire")


def test_a_stored_message_can_be_processed_later_from_the_storage():
    """What a worker does in queued processing: the message as stored, its envelope, once."""
    from mailserver.envelope import Envelope
    from mailserver.store.handler import accept, process

    inbound = accept(MESSAGE, Envelope(sender="ann@example.org", recipient="help@desk.example.com"))
    assert inbound.status == "received" and not Ticket.objects.exists()
    with inbound.open_raw() as raw:
        result = process(inbound, raw, inbound.envelope())
    assert result.outcome is Outcome.DELIVERED and Ticket.objects.count() == 1
    with inbound.open_raw() as raw:
        assert isinstance(process(inbound, raw, inbound.envelope()), RecordedResult)
    assert Ticket.objects.count() == 1
    inbound.refresh_from_db()
    assert (inbound.status, inbound.attempts) == ("processed", 1)
