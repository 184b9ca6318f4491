"""The LMTP conversation, over a real unix socket to a real server."""

import asyncio
import io
import logging

import pytest
from hypothesis import given
from hypothesis import settings as settings_
from hypothesis import strategies as st

from . import views
from .conftest import MESSAGE, Client


def test_lhlo_announces_the_extensions(start_server, settings):
    from .conftest import Client

    client = Client(start_server().address)
    greeting = client.reply()
    assert greeting.startswith("220 ") and "LMTP" in greeting
    lines = client.command("LHLO mta.example").splitlines()
    keywords = [line[4:] for line in lines[1:]]
    assert f"SIZE {64 * 1024}" in keywords
    for keyword in ("PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8"):
        assert keyword in keywords
    assert any(k.startswith("XFORWARD ") and "IDENT" in k for k in keywords)
    assert client.command("EHLO mta.example").startswith("500")  # LMTP has LHLO only
    client.close()


@pytest.mark.parametrize(
    "address",
    [
        "ok\u202e@example.com",  # a bidi override, invisible in a log
        "ok\u2028@example.com",  # a line separator
        "a" * 65 + "@example.com",  # over RFC 5321's 64 octets
        "ok@" + "l" * 64 + ".example",  # a label over 63
    ],
)
def test_an_address_that_is_none_is_refused_as_bad_syntax(lmtp, address):
    assert lmtp.command(f"MAIL FROM:<{address}>").startswith("553 5.1.7 ")
    assert lmtp.command("MAIL FROM:<ann@example.org>") == "250 2.1.0 OK"
    reply = lmtp.command(f"RCPT TO:<{address}>")
    assert reply.startswith("553 5.1.3 "), reply
    assert reply.isascii() and reply.isprintable()  # quoted back escaped
    assert lmtp.command("MAIL FROM:<>").startswith("503")  # still in the transaction
    assert views.seen == []


def test_unknown_recipient_is_refused_at_rcpt_time_without_a_view(lmtp):
    assert lmtp.command("MAIL FROM:<ann@example.org>") == "250 2.1.0 OK"
    assert lmtp.command("RCPT TO:<nobody@example.com>") == (
        "550 5.1.1 <nobody@example.com>: no such mailbox"
    )
    assert lmtp.command("DATA").startswith("503 5.5.1")
    assert lmtp.command("RCPT TO:<record@example.com>") == "250 2.1.5 OK"
    assert views.seen == []


def test_one_reply_per_recipient_after_data_in_rcpt_order(lmtp, caplog):
    caplog.set_level(logging.INFO, "mailserver.delivery")
    replies = lmtp.deliver(
        [
            "record@a.example",
            "nobody@a.example",
            "raise@a.example",
            "defer@a.example",
            "reject@a.example",
            "ok@a.example",
        ]
    )
    assert replies == [
        "250 2.1.0 OK",
        "250 2.1.5 OK",
        "550 5.1.1 <nobody@a.example>: no such mailbox",
        "250 2.1.5 OK",
        "250 2.1.5 OK",
        "250 2.1.5 OK",
        "250 2.1.5 OK",
        "354 End data with <CR><LF>.<CR><LF>",
        "250 2.0.0 accepted, no reply",
        "451 4.3.0 temporary failure, try again later",
        "451 4.3.0 database busy",
        "554 5.7.0 no thanks",
        "250 2.0.0 accepted, no reply",
    ]
    # One log line per recipient, the refused one included.
    lines = [r.getMessage() for r in caplog.records if r.name == "mailserver.delivery"]
    assert len([line for line in lines if "recipient=<" in line]) == 6
    assert all(line.startswith("transport=lmtp ") for line in lines)
    assert any(
        "recipient=<nobody@a.example> route=- outcome=unknown_recipient status=5.1.1" in line
        for line in lines
    )
    assert any(
        "recipient=<reject@a.example> route=reject outcome=rejected status=5.7.0" in line
        for line in lines
    )


def test_message_bytes_dots_long_lines_and_line_ends(start_server, settings):
    from .conftest import Client

    settings.MAIL_MAX_MESSAGE_SIZE = 1024 * 1024
    client = Client(start_server().address)
    client.reply()
    client.command("LHLO mta.example")
    body = b".a line that starts with a dot\n..two\n" + b"x" * 200_000 + b"\nend\n"
    message = b"From: Ann <ann@example.org>\nSubject: dots\n\n" + body
    replies = client.deliver(["record@example.com"], message, sender="")
    assert replies[-1] == "250 2.0.0 accepted, no reply"
    ((thread_name, request),) = views.seen
    assert request.raw == message  # unstuffed, LF line ends, long line whole
    assert request.sender == "" and request.is_bounce
    assert request.recipient == "record@example.com"
    assert request.envelope.transport == "lmtp"
    assert request.envelope.size == len(message) + message.count(b"\n")  # as sent, CRLF
    assert thread_name.startswith("mailserver")


def test_size_is_refused_at_mail_and_enforced_during_data(lmtp):
    assert lmtp.command(f"MAIL FROM:<ann@example.org> SIZE={64 * 1024 + 1}").startswith(
        "552 5.3.4 "
    )
    too_big = MESSAGE + b"y" * (64 * 1024)
    replies = lmtp.deliver(["record@example.com", "ok@example.com"], too_big)
    assert replies[-2:] == [replies[-1]] * 2
    assert replies[-1].startswith("552 5.3.4 message size ")
    assert views.seen == []
    # The session goes on.
    assert lmtp.deliver(["record@example.com"])[-1].startswith("250 2.0.0")


@pytest.mark.parametrize(
    "smuggled",
    [
        b"first\n.\nMAIL FROM:<evil@example.org>\r\n",
        b"first\n.\r\nMAIL FROM:<evil@example.org>\r\n",
        b"first\r\n.\nMAIL FROM:<evil@example.org>\r\n",
    ],
    ids=["lf-dot-lf", "lf-dot-crlf", "crlf-dot-lf"],
)
def test_a_dot_line_with_a_bare_lf_is_refused_at_once(lmtp, smuggled):
    # Only CR LF . CR LF ends the data. A dot line next to a bare LF is how
    # "SMTP smuggling" hides a second message in the first: it is answered
    # as soon as it is seen (the client does not wait for a timeout), and
    # nothing reaches a view.
    lmtp.command("MAIL FROM:<ann@example.org>")
    lmtp.command("RCPT TO:<record@example.com>")
    assert lmtp.command("DATA").startswith("354")
    lmtp.send(b"Subject: smuggle\r\n\r\n" + smuggled)
    assert lmtp.reply().startswith("521 5.5.2 ")
    assert lmtp.reply() == "<closed>"
    assert views.seen == []


def test_bare_lf_elsewhere_is_data(lmtp):
    lmtp.command("MAIL FROM:<ann@example.org>")
    lmtp.command("RCPT TO:<record@example.com>")
    assert lmtp.command("DATA").startswith("354")
    lmtp.send(b"Subject: lf\r\n\r\nfirst\nsecond\n.not alone\r\n..\r\n.\r\n")
    assert lmtp.reply() == "250 2.0.0 accepted, no reply"
    ((_, request),) = views.seen
    assert request.raw == b"Subject: lf\n\nfirst\nsecond\n.not alone\n.\n"


@pytest.mark.parametrize(
    "message",
    [
        b".starts with a dot\n\nbody\n",
        b"Subject: lone dots\n\n.\n..\nend.\nline ending with a dot.\n",
        b"Subject: no final line end\n\nlast line",
        # Longer than what the reader buffers at once: read in pieces.
        b"Subject: x\n\n" + b"." * 150_000 + b"\n.\n",
    ],
    ids=["first-line", "dot-lines", "no-line-end", "long-dot-line"],
)
def test_dot_stuffing_round_trips(start_server, settings, message):
    settings.MAIL_MAX_MESSAGE_SIZE = 1024 * 1024
    client = Client(start_server().address)
    client.reply()
    client.command("LHLO mta.example")
    assert client.deliver(["record@example.com"], message)[-1].startswith("250 2.0.0")
    ((_, request),) = views.seen
    expected = message if message.endswith(b"\n") else message + b"\n"
    assert request.raw == expected


def test_pipelined_commands_get_their_replies_in_order(lmtp):
    lmtp.send(
        b"MAIL FROM:<ann@example.org>\r\nRCPT TO:<ok@example.com>\r\n"
        b"RCPT TO:<nobody@example.com>\r\nRCPT TO:<defer@example.com>\r\nDATA\r\n"
    )
    replies = [lmtp.reply() for _ in range(5)]
    assert [r[:3] for r in replies] == ["250", "250", "550", "250", "354"]
    lmtp.data(MESSAGE)
    assert [lmtp.reply()[:9] for _ in range(2)] == ["250 2.0.0", "451 4.3.0"]


def test_empty_message_is_malformed(lmtp):
    assert lmtp.deliver(["ok@example.com"], b"")[-1].startswith("554 5.6.0")


def test_queue_id_from_xforward_or_from_received(lmtp, caplog):
    caplog.set_level(logging.INFO, "mailserver.delivery")
    assert lmtp.command("XFORWARD IDENT=4AbC12 ADDR=192.0.2.7 NAME=[UNAVAILABLE]") == (
        "250 2.0.0 OK"
    )
    lmtp.deliver(["record@example.com"])
    received = (
        b"Received: from mx.example (mx.example [192.0.2.1])\n\tby mail.example (Postfix)"
        b" with ESMTP id 9ZyX87\n\tfor <record@example.com>; Thu, 1 Jan 2026 00:00:00 +0000\n"
    )
    lmtp.deliver(["record@example.com"], received + MESSAGE)
    lmtp.deliver(["record@example.com"])
    lines = [r.getMessage() for r in caplog.records if "recipient=<record" in r.getMessage()]
    assert [line.split()[1] for line in lines] == [
        "queue_id=4AbC12",
        "queue_id=9ZyX87",
        "queue_id=-",
    ]
    assert views.seen[0][1].envelope.client_address == "192.0.2.7"
    assert views.seen[2][1].envelope.client_address == ""  # reset after each message
    assert lmtp.command("MAIL FROM:<a@example.org>").startswith("250")
    assert lmtp.command("XFORWARD IDENT=late").startswith("503")


@settings_(max_examples=300, deadline=None)
@given(
    lines=st.lists(
        st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))
        | st.sampled_from([b".", b"..", b".\r", b"\r", b"x.", b"", b"." * 70]),
        max_size=30,
    ),
    limit=st.sampled_from([16, 64, 1 << 16]),
)
def test_read_data_returns_what_the_relay_sent(lines, limit):
    """Whatever the lines, the server reads back exactly the message the relay framed."""
    from mailserver.server.protocol import LMTPSession
    from mailserver.wire import dot_stuff

    message = b"\n".join(lines)
    after = b"RSET\r\n"

    async def read():
        reader = asyncio.StreamReader(limit=limit)
        reader.feed_data(dot_stuff(message) + b".\r\n" + after)
        reader.feed_eof()
        session = LMTPSession(object(), server=_Limits(), hostname="test")
        session._reader = reader
        spool = io.BytesIO()
        size = await session.read_data(None, spool)
        data = spool.getvalue()
        assert size == len(data) + data.count(b"\n")
        return data, await reader.read()

    data, rest = asyncio.run(read())
    expected = message.replace(b"\r\n", b"\n")
    if expected and not expected.endswith(b"\n"):
        expected += b"\n"
    assert data == expected
    assert rest == after  # not a byte past the end of the data


class _Limits:
    """What read_data asks of the server."""

    min_data_rate = 500
