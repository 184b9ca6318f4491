"""RFC 3834: answers to automatic mail are held back; answers that are sent say what they are."""

import itertools
import logging

import pytest
from django.core import mail

from mailserver import EmailResponse, Outcome, signals
from mailserver.autoreply import collapse_re, reply_subject
from mailserver.test import Client

pytestmark = pytest.mark.django_db

MESSAGE = b"""\
From: Ann <ann@example.org>
To: onedest@bugs.example.com
Subject: Printer
Message-ID: <m2@example.org>
References: <m0@example.org> <m1@example.org>

It is on fire.
"""


def send(raw=MESSAGE, sender="ann@example.org", recipient="onedest@bugs.example.com"):
    return Client().send(raw, recipient=recipient, sender=sender)


def with_header(header: bytes) -> bytes:
    return header + b"\n" + MESSAGE


def test_answers_thread_and_say_what_they_are():
    result = send()
    assert result.reply_sent and result.reply_suppressed is None
    [reply] = mail.outbox
    message = reply.message()
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Mailserver-Loop"] == "mailer-daemon@example.com"
    assert message["In-Reply-To"] == "<m2@example.org>"
    assert message["References"] == "<m0@example.org> <m1@example.org> <m2@example.org>"
    assert message["Subject"] == "Re: Printer"


@pytest.mark.parametrize(
    "sender, header, reason",
    [
        ("", b"", "null sender"),
        ("MAILER-DAEMON@mx.example.org", b"", "automatic sender <MAILER-DAEMON@mx.example.org>"),
        ("postmaster@example.org", b"", "automatic sender"),
        ("dev-bounces@lists.example.org", b"", "automatic sender"),
        ("bounces+abc=x@example.org", b"", "automatic sender"),
        ("ann@example.org", b"Auto-Submitted: auto-replied", "Auto-Submitted: auto-replied"),
        ("ann@example.org", b"Auto-Submitted: auto-generated; x", "Auto-Submitted: auto-generated"),
        ("ann@example.org", b"Precedence: bulk", "Precedence: bulk"),
        ("ann@example.org", b"Precedence: junk", "Precedence: junk"),
        ("ann@example.org", b"Precedence: list", "Precedence: list"),
        ("ann@example.org", b"List-Id: <dev.lists.example.org>", "mailing list (List-Id)"),
        ("ann@example.org", b"List-Unsubscribe: <mailto:x@y>", "mailing list (List-Unsubscribe)"),
        ("ann@example.org", b"X-Mailserver-Loop: elsewhere", "our own loop marker"),
        ("ann@example.org", b"Delivered-To: mailer-daemon@example.com", "our own address"),
        (
            "ann@example.org",
            b"Delivered-To: onedest@bugs.example.com\nDelivered-To: onedest@bugs.example.com",
            "this recipient twice",
        ),
    ],
)
def test_no_answer_to_automatic_mail(sender, header, reason, caplog):
    received = []

    def handled(sender, result, **kwargs):
        received.append(result)

    signals.message_handled.connect(handled)
    try:
        with caplog.at_level(logging.INFO, logger="mailserver.replies"):
            result = send(with_header(header) if header else MESSAGE, sender=sender)
    finally:
        signals.message_handled.disconnect(handled)
    # The view ran and the message is delivered; only the reply is held back.
    assert result.outcome is Outcome.DELIVERED
    assert not result.reply_sent and reason in result.reply_suppressed
    assert mail.outbox == []
    assert received[0].reply_suppressed == result.reply_suppressed
    assert "not sent" in caplog.text and reason in caplog.text


def test_auto_submitted_no_is_a_person():
    assert send(with_header(b"Auto-Submitted: no")).reply_sent


def test_list_suppression_can_be_turned_off(settings):
    settings.MAIL_SUPPRESS_REPLIES_TO_LISTS = False
    assert send(with_header(b"List-Id: <dev.lists.example.org>")).reply_sent


def test_own_addresses_setting(settings):
    settings.MAIL_OWN_ADDRESSES = ["Help@Example.com"]
    result = send(with_header(b"Delivered-To: help@example.com"))
    assert result.reply_suppressed == "Delivered-To shows our own address"


_conf_numbers = itertools.count()


def view_with(response_factory):
    import sys
    import types

    from mailserver.mailbox import mailbox

    # A new name each time: resolvers are cached per mailconf name.
    module = types.ModuleType(f"tests._autoreply_conf_{next(_conf_numbers)}")
    module.mailpatterns = [mailbox(r"^x@example\.com$", lambda request: response_factory(request))]
    sys.modules[module.__name__] = module
    return module.__name__


def client_for(factory):
    return Client(mailconf=view_with(factory), sender="ann@example.org")


def test_a_view_can_insist():
    client = client_for(lambda r: EmailResponse(body="hi", send_to_automatic=True))
    result = client.send(with_header(b"Precedence: bulk"), recipient="x@example.com")
    assert result.reply_sent
    assert mail.outbox[0].to == ["ann@example.org"]


def test_a_notice_to_someone_else_is_not_an_answer():
    client = client_for(lambda r: EmailResponse(body="new mail", to="staff@example.com"))
    result = client.send(with_header(b"Precedence: bulk"), recipient="x@example.com")
    assert result.reply_sent
    message = mail.outbox[0].message()
    assert message["Auto-Submitted"] is None and message["In-Reply-To"] is None


def test_a_view_can_say_it_answers():
    client = client_for(lambda r: EmailResponse(body="x", to="ann.other@example.org", answers=True))
    result = client.send(with_header(b"Precedence: bulk"), recipient="x@example.com")
    assert result.reply_suppressed == "Precedence: bulk"


def test_answers_go_to_the_envelope_sender_with_a_re_subject():
    client = client_for(lambda r: EmailResponse(body="thanks"))
    result = client.send(MESSAGE, recipient="x@example.com", sender="bounce-ann@example.net")
    # "bounce-*" is automatic by default; a plain envelope sender:
    assert result.reply_suppressed
    result = client.send(MESSAGE, recipient="x@example.com", sender="ann-env@example.net")
    [reply] = mail.outbox
    assert reply.to == ["ann-env@example.net"]
    assert reply.subject == "Re: Printer"


def test_re_does_not_pile_up():
    assert reply_subject("Re: RE: re[2]: Printer") == "Re: Printer"
    assert reply_subject("") == "Re: "
    assert collapse_re("Re: Re: x") == "Re: x"
    assert collapse_re("[#1] Printer") == "[#1] Printer"
    raw = MESSAGE.replace(b"Subject: Printer", b"Subject: Re: Re: Printer")
    send(raw)
    assert mail.outbox[0].subject == "Re: Printer"


@pytest.mark.parametrize(
    "header",
    [
        b"Subject: =?utf-8?q?Hi=0D=0ABcc=3A_victim=40example=2Ecom?=",
        b"From: =?utf-8?q?Evil=0ABcc=3A_x=40y?= <ann@example.org>",
        b"Message-ID: <a@b>\r\nX-Injected: yes",
    ],
)
def test_nothing_from_the_request_injects_a_header(header):
    raw = MESSAGE.replace(b"Message-ID: <m2@example.org>\n", b"").replace(
        b"Subject: Printer\n", b""
    )
    raw = raw.replace(b"From: Ann <ann@example.org>\n", b"") if header.startswith(b"From") else raw
    result = send(header + b"\n" + raw)
    assert result.outcome is Outcome.DELIVERED
    assert result.reply_sent
    text = mail.outbox[0].message().as_string()
    headers = text.split("\n\n", 1)[0]
    assert "\nBcc:" not in headers and "\nX-Injected" not in headers


def test_an_unsafe_reply_is_held_back_cleanly():
    client = client_for(
        lambda r: EmailResponse(subject="a\nBcc: x@y", body="b", to="ann@example.org")
    )
    result = client.send(MESSAGE, recipient="x@example.com")
    assert result.outcome is Outcome.DELIVERED
    assert result.reply_suppressed.startswith("unsafe reply: ")
    assert mail.outbox == []


def test_failure_notices_are_off_by_default():
    result = send(recipient="nobody@example.com")
    assert result.outcome is Outcome.UNKNOWN_RECIPIENT and not result.notice_sent
    assert mail.outbox == []


def test_failure_notices_when_turned_on(settings):
    settings.MAIL_FAILURE_NOTICES = True
    result = send(recipient="nobody@example.com")
    assert result.notice_sent
    [notice] = mail.outbox
    assert notice.to == ["ann@example.org"]
    assert notice.from_email == "mailer-daemon@example.com"
    assert "5.1.1 <nobody@example.com>: no such mailbox" in notice.body
    assert notice.message()["Auto-Submitted"] == "auto-replied"
    mail.outbox.clear()
    # Never to a null or automatic sender.
    assert not send(recipient="nobody@example.com", sender="").notice_sent
    assert not send(with_header(b"Precedence: bulk"), recipient="nobody@example.com").notice_sent
    # Nor for a deferral: the MTA retries, nobody needs telling.
    assert not send(recipient="defer@example.com").notice_sent
    assert mail.outbox == []
