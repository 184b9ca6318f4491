"""The relay's pieces that need no server: addresses, replies, the wire format."""

import pytest

from mailserver.relay import Endpoint, Reply, decide, parse_endpoint, wire_format, xtext
from mailserver.server.protocol import unxtext
from mailserver.status import Outcome


@pytest.mark.parametrize(
    "text, endpoint",
    [
        ("unix:/run/ms/lmtp.sock", Endpoint(path="/run/ms/lmtp.sock")),
        ("/run/ms/lmtp.sock", Endpoint(path="/run/ms/lmtp.sock")),
        ("127.0.0.1:8024", Endpoint(host="127.0.0.1", port=8024)),
        ("inet:localhost:24", Endpoint(host="localhost", port=24)),
        ("[::1]:8024", Endpoint(host="::1", port=8024)),
    ],
)
def test_parse_endpoint(text, endpoint):
    assert parse_endpoint(text) == endpoint
    assert parse_endpoint(str(endpoint)) == endpoint


@pytest.mark.parametrize("text", ["unix:", "localhost", "localhost:", "host:99999", ":24"])
def test_parse_endpoint_refuses(text):
    with pytest.raises(ValueError):
        parse_endpoint(text)


@pytest.mark.parametrize("outcome", list(Outcome))
def test_every_rows_reply_maps_back_to_its_exit_code(outcome):
    reply = Reply.parse([outcome.reply()])
    assert reply.outcome.exit_code == outcome.exit_code
    assert reply.dsn_line() == outcome.dsn_line()


@pytest.mark.parametrize(
    "line, exit_code, dsn",
    [
        ("250 OK", 0, "2.0.0 OK"),
        ("421 4.3.2 shutting down", 75, "4.3.2 shutting down"),
        ("450 mailbox busy", 75, "4.0.0 mailbox busy"),
        ("552 5.3.4 too big", 65, "5.3.4 too big"),
        ("550 5.7.1 not you", 77, "5.7.1 not you"),
        # Not in the table: bounced with EX_UNAVAILABLE, the server's code kept.
        ("550 5.2.2 mailbox full", 69, "5.2.2 mailbox full"),
        ("500 Error: bad syntax", 69, "5.0.0 Error: bad syntax"),
        # An enhanced code of the wrong class is text, not a code.
        ("550 4.1.1 odd", 69, "5.0.0 4.1.1 odd"),
    ],
)
def test_replies_outside_the_table(line, exit_code, dsn):
    reply = Reply.parse([line])
    assert (reply.outcome.exit_code, reply.dsn_line()) == (exit_code, dsn)


def test_multiline_reply():
    reply = Reply.parse(["451-4.3.0 first", "451 4.3.0 second"])
    assert (reply.code, reply.enhanced, reply.text) == (451, "4.3.0", "first second")


def test_decide_defers_first_then_bounces_then_delivers():
    ok, gone, later = (Reply.parse([r]) for r in ("250 2.0.0 ok", "550 5.1.1 gone", "451 4.3.0 x"))
    assert decide([ok, ok]) == (Outcome.DELIVERED, "")
    assert decide([ok, gone]) == (Outcome.UNKNOWN_RECIPIENT, "5.1.1 gone")
    assert decide([gone, later, ok])[0] is Outcome.TEMPORARY_FAILURE


def test_wire_format():
    assert wire_format(b".a\n..b\nc\r\nd") == b"..a\r\n...b\r\nc\r\nd\r\n"
    assert wire_format(b"") == b""


def test_xtext_round_trip():
    for value in ("4AbC12", "a+b=c d", "[UNAVAILABLE]", "caf\u00e9"):
        assert unxtext(xtext(value)) == value
    assert xtext("a+b=c d") == "a+2Bb+3Dc+20d"
