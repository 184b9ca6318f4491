"""
Reply-by-mail through the real Postfix and Exim, configured from contrib/:
a signed reply address survives Postfix's recipient_delimiter and Exim's
local_part_suffix and reaches its view with its token; a tampered, expired
or misbound one bounces with 5.7.1 and no view runs. And VERP for real: a
message sent with a signed bounce address to a recipient that does not
exist comes back as the MTA's own bounce, which the bounce route turns into
bounce_received naming that recipient.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from django.test.utils import override_settings

from mailserver.signing import ALPHABET, sign_address

from .harness import TEST_DOMAIN, wait_for
from .mtaproject.settings import SECRET_KEY as MTA_SECRET_KEY
from .test_end_to_end import SENDER, deliver, only_record

pytestmark = pytest.mark.mta


def signed(local: str, **options) -> str:
    """An address signed with the test project's key, as its reverse() would make it."""
    with override_settings(SECRET_KEY=MTA_SECRET_KEY, MAIL_SUBADDRESS_DELIMITER="+"):
        return sign_address(f"{local}@{TEST_DOMAIN}", **options)


def tamper(address: str, at: int = 10) -> str:
    local, domain = address.split("@")
    base, token = local.split("+")
    other = ALPHABET[(ALPHABET.index(token[at]) + 1) % 32]
    return f"{base}+{token[:at]}{other}{token[at + 1 :]}@{domain}"


def assert_refused(mta, sub, result, reason: str) -> None:
    log = mta.log_for(sub)
    assert result.state == "bounced", log
    if mta.name == "postfix":
        assert result.dsn == "5.7.1", log
        assert reason in result.text, log
    else:
        # Exim logs the pipe's line (log_fail_output) and its exit status, 77.
        assert "5.7.1" in log and reason in log, log
        assert "returned 77" in log, log
    assert not mta.queued(sub)


def test_a_signed_address_reaches_its_view(mta, pipe_runtime):
    rcpt = signed("reply-42", bind=SENDER, expires=timedelta(hours=1))
    sub, result = deliver(mta, rcpt)
    log = mta.log_for(sub)

    assert result.state == "delivered", log
    seen = only_record(pipe_runtime, sub)
    assert seen["view"] == "signed" and seen["n"] == "42"
    assert seen["token"] == rcpt.split("+")[1].split("@")[0]
    assert seen["bound"] == SENDER
    if mta.name == "exim":
        # The router matched "reply-42"; the token came through LOCAL_PART_SUFFIX.
        assert seen["env"]["LOCAL_PART"] == "reply-42"
        assert seen["env"]["LOCAL_PART_SUFFIX"] == "+" + seen["token"]


def test_a_case_folded_token_is_accepted(mta, pipe_runtime):
    rcpt = signed("reply-43")
    local, domain = rcpt.split("@")
    base, token = local.split("+")
    sub, result = deliver(mta, f"{base}+{token.upper()}@{domain}")
    assert result.state == "delivered", mta.log_for(sub)
    assert only_record(pipe_runtime, sub)["token"] == token


@pytest.mark.parametrize(
    "case, reason",
    [
        ("tampered", "reply address signature invalid"),
        ("missing", "reply address not signed"),
        ("expired", "reply address expired"),
        ("moved", "reply address signature invalid"),
        ("misbound", "reply address issued to another sender"),
    ],
)
def test_a_bad_signed_address_bounces_5_7_1(mta, pipe_runtime, case, reason):
    rcpt = {
        "tampered": lambda: tamper(signed("reply-44", expires=3600)),
        "missing": lambda: f"reply-44@{TEST_DOMAIN}",
        "expired": lambda: signed(
            "reply-44",
            expires=timedelta(hours=1),
            issued=datetime.now(timezone.utc) - timedelta(hours=2),
        ),
        "moved": lambda: signed("reply-45").replace("reply-45+", "reply-44+"),
        "misbound": lambda: signed("reply-44", bind="someone-else@client.test"),
    }[case]()
    sub, result = deliver(mta, rcpt)
    assert_refused(mta, sub, result, reason)
    assert pipe_runtime.seen(sub.message_id) == []


def test_a_verp_bounce_comes_back_as_a_signal(mta, pipe_runtime):
    gone = f"gone-{uuid.uuid4().hex[:8]}@{TEST_DOMAIN}"  # no route: 5.1.1
    verp = signed("verp", bind=gone, expires=timedelta(days=30))
    sub, result = deliver(mta, gone, sender=verp)
    assert result.state == "bounced", mta.log_for(sub)

    def came_back():
        return [
            r
            for r in pipe_runtime.recorded("verp")
            if any(b["recipient"] == gone for b in r["bounces"])
        ]

    [record] = wait_for(came_back, 60, f"the bounce for {gone} to reach the VERP route")
    assert record["sender"] == ""  # a real bounce, with the null sender
    assert record["bounces"] == [
        {"recipient": gone, "permanent": True, "status": record["bounces"][0]["status"]}
    ]
    assert record["bounces"][0]["status"].startswith("5.")


def test_a_forged_bounce_to_the_verp_route_is_refused(mta, pipe_runtime):
    forged = signed("verp", bind="someone@client.test")
    sub, result = deliver(mta, forged, sender="", subject="Undelivered Mail Returned to Sender")
    log = mta.log_for(sub)
    assert result.state == "bounced", log
    if mta.name == "postfix":
        assert result.dsn == "5.7.1", log
    assert pipe_runtime.seen(sub.message_id) == []


# The warm path: runmailserver checks the token at RCPT time -----------------


def test_signed_addresses_through_runmailserver(warm_mta, pipe_runtime):
    from .test_warm_path import send as send_warm

    good = signed("reply-46", bind=SENDER, expires=3600)
    bad = tamper(signed("reply-47", expires=3600))
    sub, results = send_warm(warm_mta, [good, bad])
    log = warm_mta.log_for(sub)

    assert results[good].state == "delivered", log
    assert results[bad].state == "bounced", log
    if warm_mta.name == "postfix":
        assert results[bad].dsn == "5.7.1", log
    [seen] = pipe_runtime.seen(sub.message_id)
    assert seen["view"] == "signed" and seen["bound"] == SENDER and seen["transport"] == "lmtp"


def test_a_tampered_token_is_refused_during_smtp(postfix_lmtp, mailserver):
    """contrib's reject_unverified_recipient asks the server: refused in the dialogue."""
    bad, good = tamper(signed("reply-48")), signed("reply-49")
    replies = postfix_lmtp.rcpt_replies(SENDER, [bad, good])
    assert replies[bad][0] == 550 and "5.7.1" in replies[bad][1], replies
    assert replies[good][0] == 250, replies
