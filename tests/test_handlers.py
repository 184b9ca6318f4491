import logging

import pytest
from django.core import mail
from django.db import connection

from mailserver import EmailDeferResponse, EmailIgnoreResponse, EmailResponse, Outcome, signals
from mailserver.exceptions import TemporaryFailure
from mailserver.test import Client
from tests.mail import use_backend
from tests.mailapp.models import Comment, Ticket

# The sender authentication middleware looks users up for every message.
pytestmark = pytest.mark.django_db

MESSAGE = b"""\
From: Ann <ann@example.org>
To: onedest@bugs.example.com
Subject: Printer

It is on fire.
"""


def send(recipient, raw=MESSAGE, sender="ann@example.org", **client_options):
    return Client(**client_options).send(raw, recipient=recipient, sender=sender)


def send_as_the_mta_would(recipient, raw=MESSAGE, sender="ann@example.org"):
    """A view's bug comes back as the deferral the MTA gets, not raised in the test."""
    return send(recipient, raw, sender, raise_request_exception=False)


def test_the_original_example_replies():
    result = send("onedest@bugs.example.com")
    assert result.outcome is Outcome.DELIVERED and result.reply_sent
    assert isinstance(result.response, EmailResponse)
    [reply] = mail.outbox
    assert reply.to == ["Ann <ann@example.org>"]
    assert reply.from_email == "onedest@bugs.example.com"
    assert reply.subject == "Re: Printer"
    assert reply.body == "It is on fire.\n"
    assert result.route == "tests.mailapp.mailers.reply"


def test_unknown_recipient_bounces_with_5_1_1():
    result = send("nobody+tag@example.com")
    assert result.outcome is Outcome.UNKNOWN_RECIPIENT
    assert result.dsn_line() == "5.1.1 <nobody+tag@example.com>: no such mailbox"
    assert result.reply() == "550 5.1.1 <nobody+tag@example.com>: no such mailbox"
    assert result.exit_code == 67
    assert mail.outbox == []


@pytest.mark.django_db
def test_http404_from_a_view_is_an_unknown_recipient():
    result = send("99-reply@tickets.example.com")
    assert result.outcome is Outcome.UNKNOWN_RECIPIENT
    assert "99-reply@tickets.example.com" in result.status_text


@pytest.mark.django_db
def test_captured_kwargs_reach_the_view():
    ticket = Ticket.objects.create(subject="x")
    result = send(f"{ticket.pk}-reply@tickets.example.com")
    assert result.outcome is Outcome.IGNORED
    assert Comment.objects.get().body == "It is on fire.\n"


def test_an_exception_in_a_view_defers_and_reports(caplog, settings):
    seen = []

    def on_exception(sender, request, exception, **kwargs):
        seen.append((request.recipient, exception))

    signals.got_message_exception.connect(on_exception)
    try:
        with caplog.at_level(logging.ERROR, logger="mailserver.request"):
            result = send_as_the_mta_would("broken@example.com")
    finally:
        signals.got_message_exception.disconnect(on_exception)
    assert result.outcome is Outcome.TEMPORARY_FAILURE and result.exit_code == 75
    assert result.dsn_line().startswith("4.3.0 ")
    assert "the view is broken" not in result.dsn_line()  # no internals to the sender
    [record] = [r for r in caplog.records if r.name == "mailserver.request"]
    assert record.exc_info[0] is RuntimeError
    assert seen and seen[0][0] == "broken@example.com"
    assert result.exception is seen[0][1] and isinstance(result.exception, RuntimeError)
    [admin_mail] = mail.outbox
    assert admin_mail.to == ["admin@example.com"]
    assert "RuntimeError: the view is broken" in admin_mail.body


def test_no_admin_mail_in_debug(settings):
    settings.DEBUG = True
    assert send_as_the_mta_would("broken@example.com").outcome is Outcome.TEMPORARY_FAILURE
    assert mail.outbox == []


def test_a_view_returning_none_is_a_bug_not_a_bounce(caplog):
    with pytest.raises(ValueError, match="didn't return a response"):
        send("none@example.com")
    with caplog.at_level(logging.ERROR, logger="mailserver.request"):
        result = send_as_the_mta_would("none@example.com")
    assert result.outcome is Outcome.TEMPORARY_FAILURE
    assert "didn't return a response" in caplog.text


def test_outcomes_returned_or_raised():
    assert send("defer@example.com").outcome is Outcome.TEMPORARY_FAILURE
    assert send("defer@example.com").dsn_line() == "4.3.0 database busy"
    result = send("refuse@example.com")
    assert (result.outcome, result.exit_code, result.dsn_line()) == (
        Outcome.REJECTED,
        69,
        "5.7.0 no attachments here",
    )


# What the MTA in front (authserv-id mx.test) says of ann@example.org's mail.
VERIFIED = (
    b"Authentication-Results: mx.test; dkim=pass header.d=example.org;\n"
    b" dmarc=pass header.from=example.org\n" + MESSAGE
)


@pytest.mark.django_db
def test_permission_denied_for_anonymous_senders(settings):
    from django.contrib.auth.models import User

    settings.MAIL_AUTHSERV_IDS = ["mx.test"]
    result = send("members@example.com", raw=VERIFIED)
    assert result.outcome is Outcome.PERMISSION_DENIED and result.exit_code == 77
    assert result.dsn_line() == "5.7.1 <ann@example.org>: sender not allowed"
    User.objects.create_user("ann", email="Ann@Example.org")
    result = send("members@example.com", raw=VERIFIED)
    assert result.outcome is Outcome.IGNORED
    assert result.response.seen == {"user": "ann"}
    assert result.request.user.username == "ann"
    # The same From address, unverified, is anyone's claim: no user.
    result = send("members@example.com")
    assert result.outcome is Outcome.PERMISSION_DENIED
    assert result.request.user.is_anonymous


@pytest.mark.django_db
def test_ambiguous_or_inactive_senders_stay_anonymous(settings):
    from django.contrib.auth.models import User

    settings.MAIL_AUTHSERV_IDS = ["mx.test"]
    User.objects.create_user("ann1", email="ann@example.org")
    User.objects.create_user("ann2", email="ann@example.org")
    assert send("members@example.com", raw=VERIFIED).outcome is Outcome.PERMISSION_DENIED
    User.objects.filter(username="ann2").delete()
    User.objects.filter(username="ann1").update(is_active=False)
    assert send("members@example.com", raw=VERIFIED).outcome is Outcome.PERMISSION_DENIED


def test_async_views():
    assert send("async@example.com").outcome is Outcome.IGNORED


def test_malformed_and_empty_input():
    assert send("onedest@bugs.example.com", raw=b"").outcome is Outcome.MALFORMED
    assert send("onedest@bugs.example.com", raw=b"\n\n").dsn_line() == "5.6.0 empty message"


def test_size_limit(settings):
    settings.MAIL_MAX_MESSAGE_SIZE = 50
    result = send("onedest@bugs.example.com")
    assert result.outcome is Outcome.TOO_BIG
    assert result.dsn_line() == f"5.3.4 message size {len(MESSAGE)} exceeds the limit of 50 bytes"


def test_no_recipient_is_our_configuration_and_defers():
    result = Client().send(MESSAGE, recipient="", sender="a@b.c")
    assert result.outcome is Outcome.MISCONFIGURED and result.exit_code == 75


def test_missing_root_mailconf_defers(settings):
    del settings.ROOT_MAILCONF
    result = send("onedest@bugs.example.com")
    assert result.outcome is Outcome.MISCONFIGURED
    settings.ROOT_MAILCONF = "tests.mailapp.does_not_exist"
    result = send_as_the_mta_would("onedest@bugs.example.com")
    assert result.outcome is Outcome.TEMPORARY_FAILURE
    assert isinstance(result.exception, ModuleNotFoundError)


def test_failure_to_send_the_reply_defers(settings):
    use_backend(settings, "tests.test_handlers.BrokenBackend")
    result = send_as_the_mta_would("onedest@bugs.example.com")
    assert result.outcome is Outcome.TEMPORARY_FAILURE
    assert not result.reply_sent


class BrokenBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("smtp down")


@pytest.mark.django_db(transaction=True)
def test_atomic_requests_roll_back_a_failed_message(settings):
    ticket = Ticket.objects.create(subject="x")
    settings.MAIL_ATOMIC_REQUESTS = True
    assert send(f"atomic-{ticket.pk}@example.com").outcome is Outcome.TEMPORARY_FAILURE
    assert not Comment.objects.exists()
    settings.MAIL_ATOMIC_REQUESTS = False
    assert send(f"atomic-{ticket.pk}@example.com").outcome is Outcome.TEMPORARY_FAILURE
    assert Comment.objects.count() == 1


class AtomicBlockRecordingBackend:
    seen = []

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        self.seen.append((connection.in_atomic_block, Ticket.objects.count()))
        return len(messages)


@pytest.mark.django_db(transaction=True)
def test_atomic_requests_send_the_reply_after_commit(settings):
    settings.MAIL_ATOMIC_REQUESTS = True
    use_backend(settings, "tests.test_handlers.AtomicBlockRecordingBackend")
    AtomicBlockRecordingBackend.seen = []
    result = send("new@tickets.example.com")
    assert result.outcome is Outcome.DELIVERED and result.reply_sent
    # Sent outside the transaction, once the ticket was committed.
    assert AtomicBlockRecordingBackend.seen == [(False, 1)]


def test_replies_come_from_the_mailer_daemon_unless_the_view_says():
    send("new@tickets.example.com")
    [reply] = mail.outbox
    assert reply.from_email == "mailer-daemon@example.com"
    assert reply.to == ["ann@example.org"]


def test_signals_received_and_handled():
    events = []

    def received(sender, request, **kwargs):
        events.append(("received", request.recipient))

    def handled(sender, request, result, **kwargs):
        events.append(("handled", result.outcome))

    signals.message_received.connect(received)
    signals.message_handled.connect(handled)
    try:
        send("onedest@bugs.example.com")
        send("nobody@example.com")
        send("x@y.z", raw=b"")
    finally:
        signals.message_received.disconnect(received)
        signals.message_handled.disconnect(handled)
    assert events == [
        ("received", "onedest@bugs.example.com"),
        ("handled", Outcome.DELIVERED),
        ("received", "nobody@example.com"),
        ("handled", Outcome.UNKNOWN_RECIPIENT),
        ("handled", Outcome.MALFORMED),
    ]


class Recorder:
    calls = []

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        Recorder.calls.append(("before", request.recipient))
        response = self.get_response(request)
        Recorder.calls.append(("after", response.outcome))
        return response

    def process_view(self, request, view, args, kwargs):
        Recorder.calls.append(("view", view.__name__, kwargs))
        if request.subject == "short-circuit":
            return EmailIgnoreResponse()

    def process_exception(self, request, exception):
        Recorder.calls.append(("exception", type(exception).__name__))


def test_middleware_chain(settings):
    settings.MAIL_MIDDLEWARE = [
        "tests.test_handlers.Recorder",
        "mailserver.middleware.CommonMiddleware",
    ]
    Recorder.calls = []
    send("support-billing@example.com")
    assert Recorder.calls == [
        ("before", "support-billing@example.com"),
        ("view", "echo_args", {"queue": "billing", "via": "support"}),
        ("after", Outcome.IGNORED),
    ]
    Recorder.calls = []
    assert send_as_the_mta_would("broken@example.com").outcome is Outcome.TEMPORARY_FAILURE
    assert ("exception", "RuntimeError") in Recorder.calls
    # The outer middleware sees a response, not the exception.
    assert Recorder.calls[-1] == ("after", Outcome.TEMPORARY_FAILURE)
    Recorder.calls = []
    mail.outbox.clear()  # the report to ADMINS
    raw = MESSAGE.replace(b"Subject: Printer", b"Subject: short-circuit")
    assert send("onedest@bugs.example.com", raw=raw).outcome is Outcome.IGNORED
    assert mail.outbox == []


def test_test_client_accepts_bytes_text_and_messages(mail_client):
    from email import message_from_bytes

    for message in (MESSAGE, MESSAGE.decode(), message_from_bytes(MESSAGE)):
        result = mail_client.send(message, recipient="onedest@bugs.example.com")
        assert result.outcome is Outcome.DELIVERED
        assert result.request.envelope.transport == "test"
    assert len(mail.outbox) == 3


def test_client_with_its_own_mailconf():
    client = Client(mailconf="tests.mailapp.original")
    assert client.send(MESSAGE, recipient="onedest").outcome is Outcome.DELIVERED
    assert client.send(MESSAGE, recipient="onedest@bugs.example.com").outcome is Outcome.DELIVERED
    assert client.send(MESSAGE, recipient="other").outcome is Outcome.UNKNOWN_RECIPIENT


def test_status_text_is_not_the_body():
    # request.text is the message's body; the status line's text is status_text.
    result = send("defer@example.com")
    assert result.status_text == "database busy"
    assert result.request.text == "It is on fire.\n"
    response = EmailDeferResponse("not now")
    assert response.status_text == "not now" and not hasattr(response, "text")
    assert TemporaryFailure("busy").status_text == "busy"


def test_result_text_still_reads_but_warns():
    from mailserver.deprecation import RemovedInMailserver02Warning

    result = send("defer@example.com")
    with pytest.warns(RemovedInMailserver02Warning, match="status_text"):
        assert result.text == "database busy"
    assert issubclass(RemovedInMailserver02Warning, DeprecationWarning)
