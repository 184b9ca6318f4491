"""The wire format both the LMTP client and the server speak: endpoints, replies, framing."""

import pytest
from hypothesis import given
from hypothesis import settings as settings_
from hypothesis import strategies as st

from mailserver.status import Outcome
from mailserver.transport import decide
from mailserver.wire import (
    Endpoint,
    Reply,
    dot_stuff,
    dot_unstuff,
    parse_endpoint,
    unxtext,
    xtext,
)


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


def test_dot_stuff():
    assert dot_stuff(b".a\n..b\nc\r\nd") == b"..a\r\n...b\r\nc\r\nd\r\n"
    assert dot_stuff(b"") == b""


def test_xtext_round_trip():
    for value in ("4AbC12", "a+b=c d", "[UNAVAILABLE]", "caf\u00e9"):
        assert unxtext(xtext(value)) == value
    assert xtext("a+b=c d") == "a+2Bb+3Dc+20d"


@settings_(max_examples=500, deadline=None)
@given(
    st.lists(
        st.binary(max_size=30).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
        | st.sampled_from([b".", b"..", b"...", b".x", b""]),
        max_size=20,
    )
)
def test_dot_unstuff_undoes_dot_stuff(lines):
    """What the client frames, the server reads back: LF line ends, each line whole."""
    message = b"\n".join(lines)
    framed = dot_stuff(message)
    assert b"\r\n.\r\n" not in b"\r\n" + framed  # the data never ends early
    expected = message if not message or message.endswith(b"\n") else message + b"\n"
    assert dot_unstuff(framed) == expected


@settings_(max_examples=500, deadline=None)
@given(st.text())
def test_unxtext_undoes_xtext(value):
    encoded = xtext(value)
    assert encoded.isascii() and " " not in encoded and "=" not in encoded
    assert unxtext(encoded) == value.encode("utf-8", "replace").decode("utf-8", "replace")
