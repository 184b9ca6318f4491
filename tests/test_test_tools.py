"""The testing tools of mailserver.test: Client, RequestFactory, build_message()."""

import email
import subprocess
import sys
from email import policy
from email.message import EmailMessage

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404

from mailserver import EmailIgnoreResponse, EmailResponse, Outcome, signals
from mailserver.exceptions import PermissionDenied, RecipientNotFound, TemporaryFailure
from mailserver.mailbox import mailbox
from mailserver.request import EmailRequest
from mailserver.test import Client, RequestFactory, build_message
from tests.mail import use_backend
from tests.mailapp import mailers
from tests.mailapp.models import Ticket

from .test_pipe import ROOT, deliveries, output, pipe

pytestmark = pytest.mark.django_db

# This module is its own mailconf (Client(mailconf=__name__)), as Django's
# tests are their own ROOT_URLCONF: views that raise each kind of exception.
THIS = __name__


def _raises(exception):
    def view(request):
        raise exception

    return view


mailpatterns = [
    mailbox(r"^bug@", _raises(KeyError("no such key"))),
    mailbox(r"^not-found@", _raises(RecipientNotFound("<x>: gone"))),
    mailbox(r"^denied@", _raises(PermissionDenied("members only"))),
    mailbox(r"^busy@", _raises(TemporaryFailure("database busy"))),
    mailbox(r"^http404@", _raises(Http404("no ticket"))),
    mailbox(r"^django-denied@", _raises(DjangoPermissionDenied("no"))),
    mailbox(r"^ok@", lambda request: EmailIgnoreResponse()),
]


# Client: a view's bug raises, an outcome does not -----------------------------


def test_a_bug_in_a_view_is_raised_in_the_test():
    with pytest.raises(KeyError, match="no such key"):
        Client(mailconf=THIS).send(subject="x", recipient="bug@example.com")


def test_a_bug_after_the_view_is_raised_too(settings):
    # Sending the reply fails: on our side, so a deferral for the MTA, and
    # the test learns why.
    use_backend(settings, "tests.test_handlers.BrokenBackend")
    with pytest.raises(ConnectionRefusedError, match="smtp down"):
        Client().send(subject="x", text="y", recipient="onedest@bugs.example.com")


def test_without_raising_the_result_is_the_deferral_the_mta_gets():
    client = Client(mailconf=THIS, raise_request_exception=False)
    result = client.send(subject="x", recipient="bug@example.com")
    assert result.outcome is Outcome.TEMPORARY_FAILURE and result.exit_code == 75
    assert result.dsn_line() == "4.3.0 temporary failure, try again later"
    assert isinstance(result.exception, KeyError)


@pytest.mark.parametrize(
    "recipient, outcome",
    [
        ("not-found@example.com", Outcome.UNKNOWN_RECIPIENT),
        ("denied@example.com", Outcome.PERMISSION_DENIED),
        # A deferral the view asks for is an outcome, not a bug.
        ("busy@example.com", Outcome.TEMPORARY_FAILURE),
        ("http404@example.com", Outcome.UNKNOWN_RECIPIENT),
        ("django-denied@example.com", Outcome.PERMISSION_DENIED),
        ("nobody@nowhere.example", Outcome.UNKNOWN_RECIPIENT),
    ],
)
def test_exceptions_that_name_an_outcome_are_never_raised(recipient, outcome):
    result = Client(mailconf=THIS).send(subject="x", recipient=recipient)
    assert result.outcome is outcome


@pytest.mark.parametrize(
    "recipient,outcome",
    [
        ("http404@example.com", Outcome.UNKNOWN_RECIPIENT),
        ("django-denied@example.com", Outcome.PERMISSION_DENIED),
    ],
)
def test_django_outcome_exceptions_are_not_raised_without_any_middleware(
    settings, recipient, outcome
):
    # The core maps Django's Http404 and PermissionDenied, as Django's own
    # handler does: no middleware is needed for them to mean their outcome.
    settings.MAIL_MIDDLEWARE = []
    result = Client(mailconf=THIS).send(subject="x", recipient=recipient)
    assert result.outcome is outcome


def test_the_exception_of_one_message_does_not_leak_into_the_next():
    client = Client(mailconf=THIS)
    with pytest.raises(KeyError):
        client.send(subject="x", recipient="bug@example.com")
    result = client.send(subject="x", recipient="ok@example.com")
    assert result.outcome is Outcome.IGNORED and result.exception is None
    # And the client listens only while it sends.
    seen = []

    def listener(sender, exception, **kwargs):
        seen.append(exception)

    signals.got_message_exception.connect(listener)
    try:
        Client(mailconf=THIS, raise_request_exception=False).send(recipient="bug@example.com")
    finally:
        signals.got_message_exception.disconnect(listener)
    assert client.exception is None and len(seen) == 1


# Client: messages from keyword arguments ------------------------------------


def test_send_builds_the_message_from_its_fields():
    result = Client().send(
        recipient="onedest@bugs.example.com",
        sender="ann@example.org",
        subject="Printer",
        text="It is on fire.\n",
        client_address="192.0.2.1",
    )
    assert result.outcome is Outcome.DELIVERED
    request = result.request
    # The headers follow the envelope unless told otherwise.
    assert request.from_email == "ann@example.org"
    assert request.to == ["onedest@bugs.example.com"]
    assert request.envelope.client_address == "192.0.2.1"
    [reply] = mail.outbox
    assert (reply.to, reply.subject, reply.body) == (
        ["ann@example.org"],
        "Re: Printer",
        "It is on fire.\n",
    )


def test_send_refuses_a_message_and_fields_together_and_unknown_names():
    with pytest.raises(TypeError, match="not both"):
        Client().send(b"Subject: x\n\ny", recipient="ok@example.com", subject="x")
    with pytest.raises(TypeError, match="subjet"):
        Client().send(recipient="ok@example.com", subjet="x")
    with pytest.raises(TypeError, match="colour"):
        Client(colour="blue")


# RequestFactory ---------------------------------------------------------------


def test_the_factory_builds_a_request_to_call_a_view_with(mail_factory):
    request = mail_factory.message(
        recipient="onedest@bugs.example.com",
        from_email="Ann <ann@example.org>",
        subject="Printer",
        text="It is on fire.\n",
    )
    assert isinstance(request, EmailRequest)
    assert request.envelope.transport == "test"
    assert request.resolver_match is None
    response = mailers.reply(request)
    assert isinstance(response, EmailResponse)
    assert response.to == ["Ann <ann@example.org>"]
    assert response.subject == "Re: Printer"
    assert response.body == "It is on fire.\n"
    assert mail.outbox == []  # nothing dispatched, nothing sent


def test_the_factory_takes_raw_messages_and_envelope_defaults():
    factory = RequestFactory(sender="ann@example.org", queue_id="Q1")
    raw = b"Delivered-To: help@example.com\nSubject: hi\n\nhello\n"
    request = factory.message(raw)
    assert request.raw == raw
    assert request.recipient == "help@example.com"  # from the headers, as the pipe does
    assert (request.sender, request.envelope.queue_id) == ("ann@example.org", "Q1")
    assert factory.message(raw, sender="").is_bounce


def test_the_factory_resolves_when_asked():
    ticket = Ticket.objects.create(subject="Printer")
    request = RequestFactory().message(
        recipient=f"{ticket.pk}-reply@tickets.example.com", text="Still burning.", resolve=True
    )
    match = request.resolver_match
    assert match.view_name == "ticket-comment" and match.kwargs == {"ticket": str(ticket.pk)}
    assert isinstance(match.func(request, *match.args, **match.kwargs), EmailIgnoreResponse)
    assert ticket.comment_set.get().body == "Still burning.\n"
    with pytest.raises(RecipientNotFound):
        RequestFactory().message(recipient="nobody@example.com", resolve=True)


# build_message ----------------------------------------------------------------


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)


def test_a_plain_message():
    raw = build_message(
        subject="Grüße aus Köln",
        from_email="Jörg Müller <joerg@example.de>",
        to=["help@example.com", "Support Team <support@example.com>"],
        cc="bo@example.org",
        reply_to="replies@example.org",
        text="Hallo, schöne Grüße.\n",
    )
    assert raw.isascii() or b"\r\n" not in raw  # 8-bit body at most, LF line endings
    message = parse(raw)
    assert message["Subject"] == "Grüße aus Köln"
    assert b"Subject: =?utf-8?" in raw  # encoded on the wire, as mail clients do
    assert message["From"].addresses[0].display_name == "Jörg Müller"
    assert [a.addr_spec for a in message["To"].addresses] == [
        "help@example.com",
        "support@example.com",
    ]
    assert message["Cc"] == "bo@example.org" and message["Reply-To"] == "replies@example.org"
    assert message["MIME-Version"] == "1.0"
    assert message["Date"].datetime is not None
    assert message["Message-ID"].endswith("@example.de>")
    assert message.get_content_type() == "text/plain"
    assert message.get_content() == "Hallo, schöne Grüße.\n"


def test_alternatives_and_attachments_read_back_through_the_request():
    forwarded = EmailMessage()
    forwarded["Subject"] = "the original"
    forwarded.set_content("original text")
    logo = EmailMessage()
    logo.set_content(b"\x89PNG...", "image", "png", disposition="inline", cid="<logo@x>")
    raw = build_message(
        subject="Report",
        to="help@example.com",
        text="See attached.",
        html="<p>See <b>attached</b>.</p>",
        attachments=[
            ("report.pdf", b"%PDF-1.7 \x00\xff", "application/pdf"),
            ("notes.txt", "line one\nline two\n"),
            ("data.bin", b"\x00\x01\x02"),
            ("fwd.eml", forwarded),
            logo,
        ],
    )
    message = parse(raw)
    assert message.get_content_type() == "multipart/mixed"
    assert message.get_payload()[0].get_content_type() == "multipart/alternative"
    [rfc822] = [p for p in message.iter_attachments() if p.get_filename() == "fwd.eml"]
    assert rfc822.get_content_type() == "message/rfc822"
    assert rfc822.get_content()["Subject"] == "the original"
    request = EmailRequest(raw)
    assert request.recipient == ""  # no Delivered-To: the envelope is not made up
    assert request.text == "See attached.\n"
    assert request.html == "<p>See <b>attached</b>.</p>\n"
    files = {a.name: a for a in request.attachments}
    assert files["report.pdf"].content_type == "application/pdf"
    assert files["report.pdf"].read() == b"%PDF-1.7 \x00\xff"
    assert files["notes.txt"].content_type == "text/plain"
    assert files["notes.txt"].read() == b"line one\nline two\n"
    assert files["data.bin"].content_type == "application/octet-stream"
    assert [a.content_id for a in request.inline] == ["logo@x"]
    assert request.inline[0].read() == b"\x89PNG..."


def test_html_only_and_empty_messages():
    html = parse(build_message(html="<p>hi</p>"))
    assert html.get_content_type() == "text/html" and html.get_content() == "<p>hi</p>\n"
    empty = parse(build_message())
    assert empty.get_content_type() == "text/plain" and empty.get_content() == "\n"
    # A field with nothing to say is left out.
    assert "Subject" not in empty and "To" not in empty and "Cc" not in empty
    only_files = parse(build_message(attachments=[("a.txt", "a")]))
    assert only_files.get_content_type() == "multipart/mixed"
    assert [p.get_filename() for p in only_files.iter_attachments()] == ["a.txt"]


def test_headers_add_replace_repeat_and_remove():
    raw = build_message(
        subject="x",
        headers={
            "message-id": "<fixed@example.com>",
            "Date": None,
            "Received": ["from a by b", "from c by d"],
            "List-Id": "<help.example.com>",
        },
    )
    message = parse(raw)
    assert message.get_all("Message-ID") == ["<fixed@example.com>"]
    assert "Date" not in message
    assert message.get_all("Received") == ["from a by b", "from c by d"]
    assert message["List-Id"] == "<help.example.com>"


def test_a_built_message_is_what_a_real_transport_reads(process_env):
    # The pipe, a real process, hands the view the same bytes and headers.
    env = dict(process_env)
    deliveries(env)  # those of earlier tests go
    raw = build_message(subject="Grüße", text="Schöne Grüße.", attachments=[("a.txt", "a")])
    proc = pipe(env, "--recipient", "record@example.com", "--sender", "ann@example.org", input=raw)
    assert (proc.returncode, output(proc)) == (0, "")
    [delivery] = deliveries(env)
    assert (delivery["subject"], bytes(delivery["raw"])) == ("Grüße", raw)


def test_the_pytest_plugin_and_the_package_load_nothing_until_used():
    code = (
        "import sys, mailserver.test.plugin, mailserver.test; "
        "print(sorted(m for m in sys.modules if m.startswith(('django', 'mailserver.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "['mailserver.test', 'mailserver.test.plugin']", out.stderr
