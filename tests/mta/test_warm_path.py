"""
End to end, the warm path: a real Postfix or Exim hands messages to a running
``runmailserver`` (started with ``python -m django runmailserver --bind
unix:...`` as the account the views run as), either with its LMTP transport
or with its pipe transport running ``django-mailpipe --via``. Both are built
from the contrib/ files of that mode (see harness.py). As in
test_end_to_end.py, the assertions are about what the MTA concluded: its
log, its queue, its bounces; and about what the views saw.

`warm_mta` is each of postfix_lmtp, postfix_via, exim_lmtp and exim_via.
"""

from __future__ import annotations

import email.policy
import pwd
import time
from email.message import EmailMessage

import pytest

from .harness import SENDER_DOMAIN, TEST_DOMAIN, HarnessError, make_message, wait_for

pytestmark = pytest.mark.mta

SENDER = f"alice@{SENDER_DOMAIN}"


def send(mta, rcpts, sender=SENDER, msg=None, **kwargs):
    rcpts = [rcpts] if isinstance(rcpts, str) else rcpts
    msg = msg or make_message(sender=sender, to=", ".join(rcpts), **kwargs)
    sub = mta.send(msg, sender, rcpts)
    return sub, mta.wait(sub)


def wait_until(mta, sub, states: dict[str, str], timeout: float = 30) -> dict:
    """Until each recipient's latest logged state is the one given."""

    def reached():
        found = mta.results(sub, latest=True)
        return all(r in found and found[r].state == s for r, s in states.items()) and found

    try:
        return wait_for(reached, timeout, f"{states} for {sub.queue_id}", interval=0.1)
    except HarnessError as exc:
        raise HarnessError(f"{exc}\n{mta.log_for(sub)}") from None


def views_run(runtime, sub) -> list[str]:
    return sorted(r["view"] for r in runtime.seen(sub.message_id))


def only_record(runtime, sub) -> dict:
    seen = runtime.seen(sub.message_id)
    assert len(seen) == 1, seen
    return seen[0]


def is_lmtp(mta) -> bool:
    return mta.mode == "lmtp"


def test_each_recipient_gets_its_own_outcome(warm_mta, pipe_runtime, mailserver):
    """One message, three recipients: delivered, unknown, and a view that raises."""
    mta = warm_mta
    good, unknown, failing = (f"{lp}@{TEST_DOMAIN}" for lp in ("ok", "nobody-warm", "raise"))
    sub, results = send(mta, [good, unknown, failing])
    log = mta.log_for(sub)

    assert results[good].state == "delivered", log
    assert results[unknown].state == "bounced", log
    assert results[failing].state == "deferred", log
    if mta.name == "postfix":
        assert (results[good].dsn, results[unknown].dsn, results[failing].dsn) == (
            "2.0.0",
            "5.1.1",
            "4.3.0",
        ), log
        if is_lmtp(mta):
            # The server refused the unknown one before any data was sent,
            # and answered for each of the other two after it.
            assert "in reply to RCPT TO command" in results[unknown].text, log
            assert "in reply to end of DATA command" in results[failing].text, log
            assert results[good].text.startswith("250 2.0.0"), log
        else:
            # django-mailpipe --via printed the server's code and text.
            assert results[unknown].text.startswith(f"<{unknown}>: no such mailbox"), log
            assert results[failing].text.startswith("temporary failure"), log
    else:
        assert "5.1.1" in results[unknown].text or "returned 67" in log, log
        assert "4.3.0" in log, log
        if is_lmtp(mta):
            assert "550 5.1.1" in results[unknown].text, log
        else:
            assert "returned 67" in log and "returned 75" in log, log
        assert mta.bounce_for(sub) is not None
    assert mta.queued(sub), log  # for the deferred recipient only

    # The views ran in the server, for the two recipients that resolve.
    seen = pipe_runtime.seen(sub.message_id)
    assert sorted(r["view"] for r in seen) == ["ok", "raise"], seen
    assert {r["transport"] for r in seen} == {"lmtp"}
    assert {r["uid"] for r in seen} == {pwd.getpwnam(pipe_runtime.user).pw_uid}
    # And the server logged one line per recipient under the MTA's queue id.
    lines = mailserver.log_lines(sub.queue_id)
    assert any(f"<{good}>" in x and "status=2.0.0" in x for x in lines), lines
    assert any(f"<{failing}>" in x and "status=4.3.0" in x for x in lines), lines
    if not (mta.name == "exim" and is_lmtp(mta)):
        # (Exim's lmtp transport sends no queue id; the server finds it in
        # the Received header, which it has only after DATA.)
        assert any(f"<{unknown}>" in x and "status=5.1.1" in x for x in lines), lines


def long_line_message(to: str, length: int = 3000) -> EmailMessage:
    """A message with one body line far over SMTP's 998, as real HTML mail has."""
    msg = make_message(to=to, subject="long line")
    msg.clear_content()  # Content-* headers go, MIME-Version stays
    msg["Content-Type"] = "text/plain; charset=us-ascii"
    msg.set_payload("Short line.\n" + "y" * length + "\nLast line.\n")
    return msg


def test_envelope_and_message_reach_the_view(warm_mta, pipe_runtime):
    mta = warm_mta
    rcpt = f"user+tag@{TEST_DOMAIN}"
    msg = long_line_message(rcpt)
    assert max(map(len, msg.as_bytes(policy=email.policy.SMTP).split(b"\r\n"))) >= 3000
    sub, results = send(mta, rcpt, msg=msg)
    log = mta.log_for(sub)

    assert results[rcpt].state == "delivered", log
    seen = only_record(pipe_runtime, sub)
    assert seen["view"] == "user"
    assert seen["recipient"] == rcpt
    assert seen["subaddress"] == "tag"
    assert seen["sender"] == SENDER
    assert seen["transport"] == "lmtp"
    # XFORWARD (Postfix), MESSAGE_ID (Exim's pipe) or the Received header
    # (Exim's lmtp): the view has the MTA's own queue id.
    assert seen["queue_id"] == sub.queue_id
    if mta.name == "postfix":
        assert seen["client_address"] == "127.0.0.1"
    # The line was not folded on the way (lmtp_line_length_limit = 0).
    assert seen["longest_line"] == 3000, seen


def test_null_sender(warm_mta, pipe_runtime):
    rcpt = f"bounces@{TEST_DOMAIN}"
    sub, results = send(warm_mta, rcpt, sender="", subject="Undelivered Mail Returned to Sender")

    assert results[rcpt].state == "delivered", warm_mta.log_for(sub)
    seen = only_record(pipe_runtime, sub)
    assert seen["view"] == "bounces"
    assert seen["sender"] == ""


def test_unknown_recipient_refused_during_smtp(postfix_lmtp, mailserver):
    """
    contrib's reject_unverified_recipient: Postfix asks the server about the
    recipient (a probe that stops after RCPT) while the sending client waits,
    so an unknown one is refused in the SMTP dialogue and nothing is bounced
    afterwards (no backscatter). Here the client comes from outside mynetworks.
    """
    unknown, good = f"nobody-probed@{TEST_DOMAIN}", f"ok@{TEST_DOMAIN}"
    replies = postfix_lmtp.rcpt_replies(SENDER, [unknown, good])

    code, text = replies[unknown]
    assert code == 550, replies
    assert "5.1.1" in text and "no such mailbox" in text, replies
    assert replies[good][0] == 250, replies
    # The probes reached the server and ran no view.
    probes = [x for x in mailserver.log().splitlines() if "<nobody-probed@" in x]
    assert probes and all("status=5.1.1" in x for x in probes), probes


def test_server_down_keeps_the_mail(
    postfix_lmtp, postfix_via, exim_lmtp, exim_via, mailserver, pipe_runtime
):
    """
    With the server stopped, every way in defers (the MTA keeps the message)
    and none bounces; once it is back, the retry delivers.
    """
    mtas = [postfix_lmtp, postfix_via, exim_lmtp, exim_via]
    rcpt = f"ok@{TEST_DOMAIN}"
    assert mailserver.stop() == 0
    subs = []
    try:
        # Recipient verification cannot ask the server: the sending client
        # is told to try again later, not that the address does not exist.
        probed = f"not-yet-verified@{TEST_DOMAIN}"
        code, text = postfix_lmtp.rcpt_replies(SENDER, [probed])[probed]
        assert code == 450 and text.startswith("4."), (code, text)
        for mta in mtas:
            sub, results = send(mta, rcpt)
            subs.append(sub)
            log = mta.log_for(sub)
            assert results[rcpt].state == "deferred", log
            if mta.name == "postfix":
                assert results[rcpt].dsn.startswith("4."), log
            assert mta.queued(sub), log
    finally:
        mailserver.start()
    for mta, sub in zip(mtas, subs, strict=True):
        mta.retry(sub)
        wait_until(mta, sub, {rcpt: "delivered"})
        log = mta.log_for(sub)
        assert "status=bounced" not in log and " ** " not in log, log
        assert not mta.queued(sub), log
        assert views_run(pipe_runtime, sub) == ["ok"]


def test_sigterm_while_postfix_delivers_loses_nothing(postfix_lmtp, mailserver, pipe_runtime):
    """
    SIGTERM to the server while Postfix is delivering to it: the message in
    flight finishes and is delivered; a message that arrives meanwhile is
    deferred (421 while draining, or no socket once stopped), never bounced,
    and delivered once the server is back.
    """
    pf = postfix_lmtp
    paused, later = f"pause@{TEST_DOMAIN}", f"ok@{TEST_DOMAIN}"
    first = pf.send(make_message(to=paused), SENDER, [paused])
    try:
        wait_for(lambda: "pause" in views_run(pipe_runtime, first), 30, "the pause@ view to start")
        mailserver.terminate()
        second = pf.send(make_message(to=later), SENDER, [later])
        # The view in flight still finishes, and Postfix hears about it.
        results = pf.wait(first)
        assert results[paused].state == "delivered", pf.log_for(first)
        assert results[paused].dsn == "2.0.0", pf.log_for(first)
        assert mailserver.wait(30) == 0, mailserver.log()[-2000:]
        results = pf.wait(second)
        assert results[later].state == "deferred", pf.log_for(second)
        assert results[later].dsn.startswith("4."), pf.log_for(second)
        assert pf.queued(second)
        assert "Shutting down: 1 message(s) in flight" in mailserver.log()
    finally:
        if not mailserver.running:
            mailserver.start()
    started = time.monotonic()
    pf.retry(second)
    wait_until(pf, second, {later: "delivered"})
    assert time.monotonic() - started < 30
    for sub in (first, second):
        log = pf.log_for(sub)
        assert "status=bounced" not in log, log
        assert not pf.queued(sub), log
    assert views_run(pipe_runtime, first) == ["pause", "pause-done"]
    assert views_run(pipe_runtime, second) == ["ok"]
