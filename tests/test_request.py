from datetime import datetime, timezone
from email.message import EmailMessage

from django.core.files.uploadedfile import UploadedFile

from mailserver.envelope import Envelope
from mailserver.request import EmailRequest

SIMPLE = b"""\
From: Ann Example <ann@example.org>
To: Help Desk <help@bugs.example.com>, other@example.net
Cc: "Lee, Bo" <bo@example.org>
Reply-To: replies@example.org
Subject: =?utf-8?q?Caf=C3=A9?= time
Date: Thu, 26 Nov 2026 10:00:00 +0100
Message-ID: <m1@example.org>

Hello there.
"""


def make(raw=SIMPLE, **envelope):
    envelope.setdefault("sender", "ann@example.org")
    envelope.setdefault("recipient", "help@bugs.example.com")
    return EmailRequest(raw, Envelope(**envelope))


def test_the_original_methods():
    request = make()
    assert request["From"] == "Ann Example <ann@example.org>"
    assert request["X-Missing"] is None
    assert request.get_recipient_address() == "help@bugs.example.com"
    assert request.get_recipient_display() == "Help Desk <help@bugs.example.com>"
    assert request.get_body() == "Hello there.\n"


def test_recipient_display_falls_back_to_the_address():
    assert make(recipient="else@example.com").get_recipient_display() == "else@example.com"


def test_parsed_conveniences():
    request = make()
    assert request.from_email == "ann@example.org"
    assert request.from_address.display_name == "Ann Example"
    assert request.to == ["help@bugs.example.com", "other@example.net"]
    assert request.cc == ["bo@example.org"]
    assert request.reply_to == ["replies@example.org"]
    assert request.subject == "Café time"
    assert request.message_id == "<m1@example.org>"
    assert request.date == datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
    assert request.text == "Hello there.\n" and request.html is None


def test_raw_bytes_are_kept_exactly():
    raw = SIMPLE.replace(b"\n", b"\r\n")
    request = make(raw)
    assert request.raw is raw
    assert request.subject == "Café time"


def test_envelope_and_subaddress():
    request = make(recipient="help+urgent@bugs.example.com", sender="")
    assert request.subaddress == "urgent"
    assert str(request.address) == "help@bugs.example.com"
    assert request.sender == "" and request.is_bounce
    assert not make().is_bounce


def test_recipient_from_headers_in_order(settings):
    raw = b"X-Original-To: second@x.org\nDelivered-To: first@x.org\nSubject: s\n\nb\n"
    assert EmailRequest(raw, Envelope()).recipient == "first@x.org"
    raw = b"Envelope-To: third@x.org\nX-Original-To: second@x.org\n\nb\n"
    assert EmailRequest(raw, Envelope()).recipient == "second@x.org"
    assert EmailRequest(b"Envelope-To: third@x.org\n\nb\n", Envelope()).recipient == "third@x.org"
    assert EmailRequest(b"To: to@x.org\n\nb\n", Envelope()).recipient == ""
    settings.MAIL_RECIPIENT_HEADERS = ["To"]
    assert EmailRequest(b"To: Some One <to@x.org>\n\nb\n", Envelope()).recipient == "to@x.org"


def multipart():
    msg = EmailMessage()
    msg["From"] = "a@example.org"
    msg["To"] = "b@example.com"
    msg["Subject"] = "files"
    msg.set_content("plain body")
    msg.add_alternative("<p>html <img src='cid:logo@x'></p>", subtype="html")
    msg.get_payload()[1].add_related(b"\x89PNG...", "image", "png", cid="<logo@x>")
    msg.add_attachment(
        b"%PDF-1.4 data", maintype="application", subtype="pdf", filename="../../etc/report.pdf"
    )
    msg.add_attachment("a,b\n1,2\n", subtype="csv", filename="data.csv")
    return msg.as_bytes()


def test_bodies_and_files():
    request = make(multipart())
    assert request.text == "plain body\n"
    assert "<img" in request.html
    names = [a.name for a in request.attachments]
    # The path in the file name is dropped, as Django does for uploads.
    assert names == ["part-1", "report.pdf", "data.csv"]
    pdf = request.FILES["report.pdf"]
    assert isinstance(pdf, UploadedFile)
    assert pdf.content_type == "application/pdf" and pdf.size == len(b"%PDF-1.4 data")
    assert pdf.read() == b"%PDF-1.4 data"
    assert request.FILES["data.csv"].read() == b"a,b\n1,2\n"
    [logo] = request.inline
    assert logo.content_id == "logo@x" and logo.content_type == "image/png"


def test_charset_faults_do_not_raise():
    lying = (
        b"Subject: x\nContent-Type: text/plain; charset=utf-8\n"
        b"Content-Transfer-Encoding: 8bit\n\ncaf\xe9 \xff\n"
    )
    assert make(lying).text == "caf\xe9 \xff\n"  # Latin-1 when UTF-8 lies
    unknown = b"Subject: x\nContent-Type: text/plain; charset=x-klingon\n\nplain ascii\n"
    assert make(unknown).text == "plain ascii\n"
    cp1252 = b"Content-Type: text/plain; charset=windows-1252\n\n\x93quoted\x94\n"
    assert make(cp1252).text == "\u201cquoted\u201d\n"


def test_broken_headers_do_not_raise():
    raw = b"From: <<<@@@>>>\nTo: ,,,\nDate: yesterday-ish\nSubject: =?bogus?x?zz?=\n\nbody\n"
    request = make(raw)
    assert request.from_email == ""
    assert request.to == []
    assert request.date is None
    assert isinstance(request.subject, str)
    assert request.get_body() == "body\n"


def test_html_only_message():
    raw = b"Content-Type: text/html; charset=utf-8\n\n<p>hi</p>\n"
    request = make(raw)
    assert request.text is None and request.html == "<p>hi</p>\n"
    assert request.get_body() == "<p>hi</p>\n"
    assert request.attachments == []


def test_attachments_are_decoded_only_when_read():
    request = make(multipart())
    attachments = request.attachments
    assert [a._file for a in attachments] == [None, None, None]
    pdf = request.FILES["report.pdf"]
    assert pdf._file is None
    assert pdf.size == len(b"%PDF-1.4 data")  # decodes this one, not the others
    assert [a._file is None for a in attachments] == [True, False, True]
    assert pdf.read() == b"%PDF-1.4 data"
    with pdf.open() as again:
        assert again.read() == b"%PDF-1.4 data"


def test_message_ids_keep_only_the_bracketed_tokens():
    raw = b"Message-ID: junk <id@x> more\nReferences: <a@x>\n <b@x> garbage\n\nbody\n"
    request = make(raw)
    assert request.message_id == "<id@x>"
    assert request.references == ["<a@x>", "<b@x>"]
    assert make(b"Message-ID: no brackets\n\nb\n").message_id == ""
    assert make(b"In-Reply-To: <p@x>\n\nb\n").references == ["<p@x>"]


def test_odd_but_valid_header_addresses():
    raw = (
        b'From: "Doe, Jane (HR)" <"jane doe"@example.com> (a comment)\n'
        b"To: Team: ann@example.org, bo@example.org;, j\xc3\xb6rg@b\xc3\xbccher.example\n"
        b"Cc: undisclosed-recipients:;\n\nbody\n"
    )
    request = make(raw)
    assert request.from_address.display_name == "Doe, Jane (HR)"
    assert request.from_email == '"jane doe"@example.com'
    assert request.to == ["ann@example.org", "bo@example.org", "jörg@bücher.example"]
    assert request.cc == []


def test_display_names_cannot_carry_line_breaks():
    raw = b"From: =?utf-8?q?Evil=0D=0ABcc=3A_x=40y?= <ann@example.org>\n\nb\n"
    request = make(raw)
    assert request.from_email == "ann@example.org"
    assert "\n" not in request.from_address.display_name
    assert "\r" not in str(request.from_address)


def test_header_objects_are_parsed_once_and_shared():
    from email import policy
    from email.parser import BytesParser

    from mailserver.mime import parse_message

    raw = b"Content-Type: text/plain; charset=utf-8\nFrom: Ann <ann@example.org>\n\nhi\n"
    a, b = parse_message(raw), parse_message(raw)
    assert a["Content-Type"] is b["Content-Type"]
    reference = BytesParser(policy=policy.default).parsebytes(raw)
    assert a["From"].addresses == reference["From"].addresses
    assert a.get_content_type() == "text/plain" and a.get_content_charset() == "utf-8"
    assert a.get_body().get_content() == reference.get_body().get_content()
