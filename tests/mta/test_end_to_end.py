"""
End to end: a message goes into a real Postfix (by SMTP) or a real Exim (as
a local submission), through the pipe configured from contrib/, into
django-mailpipe and the test project's views. Every assertion is about what
the MTA itself concluded (its log, its queue, its bounces) and what the
view saw.
"""

from __future__ import annotations

import pwd

import pytest

from .harness import BROKEN_DOMAIN, SENDER_DOMAIN, TEST_DOMAIN, make_message

pytestmark = pytest.mark.mta

SENDER = f"alice@{SENDER_DOMAIN}"


def send(mta, rcpts, sender=SENDER, **kwargs):
    rcpts = [rcpts] if isinstance(rcpts, str) else rcpts
    msg = make_message(sender=sender, to=", ".join(rcpts), **kwargs)
    sub = mta.send(msg, sender, rcpts)
    return sub, mta.wait(sub)


def deliver(mta, rcpt, **kwargs):
    sub, results = send(mta, rcpt, **kwargs)
    return sub, results[rcpt]


def only_record(runtime, sub):
    seen = runtime.seen(sub.message_id)
    assert len(seen) == 1, seen
    return seen[0]


def test_delivered_with_envelope(mta, pipe_runtime):
    rcpt = f"ok@{TEST_DOMAIN}"
    sub, result = deliver(mta, rcpt, subject="Hello through the MTA")
    log = mta.log_for(sub)

    assert result.state == "delivered", log
    if mta.name == "postfix":
        assert result.dsn == "2.0.0", log
    assert not mta.queued(sub)

    seen = only_record(pipe_runtime, sub)
    assert seen["view"] == "ok"
    assert seen["sender"] == SENDER
    assert seen["recipient"] == rcpt
    assert seen["subject"] == "Hello through the MTA"
    assert seen["queue_id"] == sub.queue_id
    assert seen["uid"] == pwd.getpwnam(pipe_runtime.user).pw_uid
    # No mbox "From " line in front (Exim: message_prefix =; Postfix: no F flag).
    assert not seen["raw_head"].startswith("From ")
    # Postfix flag R / Exim return_path_add (Exim spells it "Return-path").
    assert seen["raw_head"].lower().startswith(f"return-path: <{SENDER}>"), seen["raw_head"]
    if mta.name == "postfix":
        assert seen["client_address"] == "127.0.0.1"
        assert seen["original_recipient"] == rcpt


def test_unknown_recipient_bounces(mta, pipe_runtime):
    rcpt = f"nobody-here@{TEST_DOMAIN}"
    sub, result = deliver(mta, rcpt)
    log = mta.log_for(sub)

    assert result.state == "bounced", log
    if mta.name == "postfix":
        assert result.dsn == "5.1.1", log
        assert rcpt in result.text, log
    else:
        # Exim ignores status codes in the output but logs it (log_fail_output).
        assert "5.1.1" in log, log
        assert "returned 67" in log, log
        assert mta.bounce_for(sub) is not None
    assert not mta.queued(sub)
    assert pipe_runtime.seen(sub.message_id) == []


@pytest.mark.parametrize("local_part", ["raise", "tempfail"])
def test_failure_in_django_defers(mta, pipe_runtime, local_part):
    """A view that raises, and one that returns EmailDeferResponse."""
    rcpt = f"{local_part}@{TEST_DOMAIN}"
    sub, result = deliver(mta, rcpt)
    log = mta.log_for(sub)

    assert result.state == "deferred", log
    if mta.name == "postfix":
        assert result.dsn == "4.3.0", log
        assert "status=bounced" not in log
    else:
        assert "returned 75" in log, log
        assert " ** " not in log
        assert mta.bounce_for(sub) is None
    assert mta.queued(sub), log
    # The view did run.
    assert only_record(pipe_runtime, sub)["view"] == local_part


def test_output_from_django_does_not_hide_the_status(mta, pipe_runtime):
    rcpt = f"noisy@{TEST_DOMAIN}"
    sub, result = deliver(mta, rcpt)
    log = mta.log_for(sub)

    assert result.state == "deferred", log
    if mta.name == "postfix":
        # The status line came first: Postfix took its code and its text.
        assert result.dsn == "4.3.0", log
        assert result.text.startswith("temporary failure"), log
    assert "stray" not in log and "warning" not in log.lower(), log
    assert mta.queued(sub)


def test_deadline_defers(mta, pipe_runtime):
    """A view that hangs: the pipe gives up after MAIL_PIPE_DEADLINE (5 s)."""
    rcpt = f"slow@{TEST_DOMAIN}"
    sub, result = deliver(mta, rcpt)
    log = mta.log_for(sub)

    assert result.state == "deferred", log
    if mta.name == "postfix":
        assert result.dsn == "4.3.0", log
    else:
        assert "returned 75" in log, log
    assert mta.queued(sub)
    assert only_record(pipe_runtime, sub)["view"] == "slow"


def test_too_big_bounces(mta, pipe_runtime):
    rcpt = f"ok@{TEST_DOMAIN}"
    sub, result = deliver(mta, rcpt, size=40_000)  # MAIL_MAX_MESSAGE_SIZE = 20_000
    log = mta.log_for(sub)

    assert result.state == "bounced", log
    if mta.name == "postfix":
        assert result.dsn == "5.3.4", log
    else:
        assert "5.3.4" in log, log
        assert mta.bounce_for(sub) is not None
    assert not mta.queued(sub)
    assert pipe_runtime.seen(sub.message_id) == []


def test_subaddress(mta, pipe_runtime):
    rcpt = f"user+tag@{TEST_DOMAIN}"
    sub, result = deliver(mta, rcpt)
    log = mta.log_for(sub)

    assert result.state == "delivered", log
    seen = only_record(pipe_runtime, sub)
    assert seen["view"] == "user"
    assert seen["subaddress"] == "tag"
    assert seen["recipient"] == rcpt
    if mta.name == "exim":
        assert seen["env"]["LOCAL_PART"] == "user"
        assert seen["env"]["LOCAL_PART_SUFFIX"] == "+tag"


def test_null_sender(mta, pipe_runtime):
    rcpt = f"bounces@{TEST_DOMAIN}"
    sub, result = deliver(mta, rcpt, sender="", subject="Undelivered Mail Returned to Sender")
    log = mta.log_for(sub)

    assert result.state == "delivered", log
    seen = only_record(pipe_runtime, sub)
    assert seen["view"] == "bounces"
    assert seen["sender"] == ""
    if mta.name == "postfix":
        # null_sender= makes ${sender} empty; "--sender=${sender}" keeps the
        # option well-formed whatever pipe(8) does with an empty word.
        assert "--sender=" in seen["argv"], seen["argv"]
    else:
        assert seen["env"]["SENDER"] == ""


def test_each_recipient_gets_its_own_outcome(mta, pipe_runtime):
    good, unknown, failing = (f"{lp}@{TEST_DOMAIN}" for lp in ("ok", "nobody-else", "raise"))
    sub, results = send(mta, [good, unknown, failing])
    log = mta.log_for(sub)

    assert results[good].state == "delivered", log
    assert results[unknown].state == "bounced", log
    assert results[failing].state == "deferred", log
    assert mta.queued(sub)  # for the deferred recipient only
    assert sorted(r["view"] for r in pipe_runtime.seen(sub.message_id)) == ["ok", "raise"]


def test_missing_command_keeps_the_mail(mta):
    """A wrong path or a broken virtualenv must not bounce anything."""
    sub, result = deliver(mta, f"ok@{BROKEN_DOMAIN}")
    log = mta.log_for(sub)

    assert result.state == "deferred", log
    assert mta.queued(sub), log
    if mta.name == "postfix":
        assert result.dsn.startswith("4."), log
    else:
        assert "Frozen" in log, log  # freeze_exec_fail
        assert mta.bounce_for(sub) is None
