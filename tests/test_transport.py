"""The transport layer every way in shares: reading, refusing, dispatching, deciding."""

import io
import logging

import pytest

from mailserver.envelope import Envelope
from mailserver.handlers import Result
from mailserver.status import Outcome
from mailserver.transport import (
    SPOOL_MEMORY,
    check_size,
    decide,
    deliver,
    read_message,
    receive,
    refuse,
)

MESSAGE = b"From: ann@example.org\nTo: ok@example.com\nSubject: hi\n\nhello\n"


def test_receive_drops_a_from_line_and_rewinds():
    from_line = b"From ann@example.org Thu Jan  1 00:00:00 2026\n"
    spool, size = receive(io.BytesIO(from_line + MESSAGE), None)
    assert spool.read() == MESSAGE
    assert size == len(MESSAGE)


def test_receive_spools_a_large_message_to_disk():
    big = MESSAGE + b"x" * (SPOOL_MEMORY + 1)
    spool, size = receive(io.BytesIO(big), None)
    assert size == len(big)
    assert spool._rolled  # on disk, not in memory
    assert spool.read() == big


def test_over_the_limit_nothing_is_kept_but_the_size_is_counted():
    spool, size = receive(io.BytesIO(MESSAGE), 10)
    assert size == len(MESSAGE)
    assert spool.read() == b""
    assert read_message(io.BytesIO(MESSAGE), 10) == (None, len(MESSAGE))
    refusal = check_size(size, 10)
    assert refusal.outcome is Outcome.TOO_BIG
    assert str(refusal) == f"message size {len(MESSAGE)} exceeds the limit of 10 bytes"
    assert check_size(size, None) is None and check_size(size, size) is None


def test_decide_defers_first_then_bounces_then_delivers():
    ok = Result(Outcome.DELIVERED)
    gone = Result(Outcome.UNKNOWN_RECIPIENT, "<x@example.com>: no such mailbox")
    later = Result(Outcome.TEMPORARY_FAILURE)
    assert decide([ok, ok]) == (Outcome.DELIVERED, "")
    assert decide([ok, gone]) == (
        Outcome.UNKNOWN_RECIPIENT,
        "5.1.1 <x@example.com>: no such mailbox",
    )
    assert decide([gone, later, ok]) == (Outcome.TEMPORARY_FAILURE, later.dsn_line())
    assert decide([]) == (Outcome.DELIVERED, "")


@pytest.mark.django_db
def test_deliver_logs_one_line_per_recipient(caplog):
    envelope = Envelope(sender="ann@example.org", queue_id="4AbC", transport="pipe")
    with caplog.at_level(logging.INFO, logger="mailserver.delivery"):
        results = deliver(MESSAGE, envelope, ["record@example.com", "nobody@example.com"])
    assert [r.outcome for r in results] == [Outcome.IGNORED, Outcome.UNKNOWN_RECIPIENT]
    lines = [r.getMessage() for r in caplog.records if r.name == "mailserver.delivery"]
    assert len(lines) == 2
    assert lines[0].startswith(
        "transport=pipe queue_id=4AbC sender=<ann@example.org> recipient=<record@example.com> "
    )
    assert "outcome=unknown_recipient status=5.1.1" in lines[1]


def test_refuse_answers_and_logs_every_recipient(caplog):
    envelope = Envelope(sender="", transport="lmtp")
    with caplog.at_level(logging.INFO, logger="mailserver.delivery"):
        results = refuse(envelope, ["a@example.com", "b@example.com"], check_size(99, 10))
    assert [r.reply() for r in results] == [
        "552 5.3.4 message size 99 exceeds the limit of 10 bytes"
    ] * 2
    assert [r.recipient for r in results] == ["a@example.com", "b@example.com"]
    assert len([r for r in caplog.records if "outcome=too_big" in r.getMessage()]) == 2


def test_the_transport_layer_loads_no_django(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys, mailserver.transport, mailserver.wire, mailserver.lmtp_client; "
        "print(sorted(m for m in ('django', 'email.message') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
