"""Structure limits and envelope syntax: the sender's faults, refused with precise codes."""

import pytest

from mailserver import Outcome
from mailserver.addresses import syntax_error
from mailserver.test import Client

pytestmark = pytest.mark.django_db

HEAD = b"From: a@example.org\nSubject: s\n"


def send(raw, recipient="inspect@example.com", sender="a@example.org"):
    return Client().send(raw, recipient=recipient, sender=sender)


def nested(depth):
    raw = b"Content-Type: text/plain\n\ninnermost\n"
    for i in range(depth):
        raw = (
            f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n'.encode()
            + raw
            + f"\n--b{i}--\n".encode()
        )
    return HEAD + raw


def test_depth_limit(settings):
    settings.MAIL_MAX_MIME_DEPTH = 5
    assert send(nested(5)).outcome is Outcome.IGNORED
    result = send(nested(6))
    assert result.outcome is Outcome.MALFORMED
    assert result.dsn_line() == "5.6.0 MIME parts nested deeper than 5"


def test_nesting_beyond_the_parsers_stack_is_refused_not_crashed():
    result = send(nested(3000))
    assert result.outcome is Outcome.MALFORMED and result.exit_code == 65


def test_parts_limit(settings):
    settings.MAIL_MAX_MIME_PARTS = 10
    parts = b"".join(b"--b\nContent-Type: text/plain\n\nx\n" for _ in range(9))
    raw = HEAD + b'Content-Type: multipart/mixed; boundary="b"\n\n' + parts + b"--b--\n"
    assert send(raw).outcome is Outcome.IGNORED  # 1 + 9 parts
    raw = raw.replace(b"--b--", b"--b\n\ny\n--b--")
    assert send(raw).dsn_line() == "5.6.0 more than 10 MIME parts"


def test_header_count_limit(settings):
    settings.MAIL_MAX_HEADER_COUNT = 50
    raw = HEAD + b"".join(b"X-H%d: v\n" % i for i in range(48)) + b"\nbody\n"
    assert send(raw).outcome is Outcome.IGNORED
    raw = b"X-More: v\n" + raw
    assert send(raw).dsn_line() == "5.6.0 more than 50 header fields in one section"


def test_header_line_limit_counts_physical_lines(settings):
    settings.MAIL_MAX_HEADER_LINE_LENGTH = 100
    folded = b"References: " + b"\n ".join(b"<%d@example.org>" % i for i in range(200))
    assert send(HEAD + folded + b"\n\nbody\n").outcome is Outcome.IGNORED
    long_line = b"X-Long: " + b"x" * 100
    assert send(HEAD + long_line + b"\n\nbody\n").dsn_line() == (
        "5.6.0 header line longer than 100 bytes"
    )


def test_limits_can_be_turned_off(settings):
    settings.MAIL_MAX_MIME_DEPTH = None
    settings.MAIL_MAX_MIME_PARTS = None
    assert send(nested(40)).outcome is Outcome.IGNORED


@pytest.mark.parametrize(
    "recipient", ["a b@example.com", "a@b..com", "x@@example.com", "a@exa\nmple.com", "@x.org"]
)
def test_bad_recipient_syntax(recipient):
    result = send(HEAD + b"\nbody\n", recipient=recipient)
    assert result.outcome is Outcome.BAD_RECIPIENT
    assert result.dsn_line().startswith("5.1.3 <")
    assert "\n" not in result.dsn_line()


def test_bad_sender_syntax():
    result = send(HEAD + b"\nbody\n", sender="bad sender@x")
    assert result.outcome is Outcome.BAD_SENDER
    assert (
        result.dsn_line() == "5.1.7 <bad sender@x>: bad sender address syntax (invalid local part)"
    )


@pytest.mark.parametrize(
    "address",
    [
        "plain@example.com",
        '"quoted name"@example.com',
        '"with\\"escape"@example.com',
        "jörg@bücher.example",
        "user@xn--bcher-kva.example",
        "user@[192.0.2.1]",
        "o'brien+tag@example.com",
        "MAILER-DAEMON",
    ],
)
def test_odd_but_valid_addresses(address):
    assert syntax_error(address) is None
