"""
VERP: a signed bounce address per recipient, and the bounce route that
turns a returning report into bounce_received, refusing forged ones.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from django.core import mail

from mailserver import Outcome
from mailserver.bounces import bounce_address, use_verp
from mailserver.signals import bounce_received
from mailserver.signing import sign_address

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


@pytest.fixture
def bounces():
    received = []

    def receiver(sender, **kwargs):
        received.append(kwargs)

    bounce_received.connect(receiver)
    yield received
    bounce_received.disconnect(receiver)


def bounce(client, address, name="dsn-postfix.eml", replace=()):
    raw = (CORPUS / name).read_bytes()
    for old, new in replace:
        raw = raw.replace(old, new)
    return client.send(raw, recipient=address, sender="")


@pytest.mark.parametrize("name", ["dsn-postfix.eml", "dsn-exim.eml"])
def test_a_real_bounce_names_the_recipient_and_its_permanence(client, bounces, name):
    address = bounce_address("nobody-here@mail.test")
    assert address.startswith("bounces+") and address.endswith("@bugs.example.com")
    result = bounce(client, address, name)
    assert result.outcome is Outcome.IGNORED
    [event] = bounces
    assert event["recipient"] == "nobody-here@mail.test"
    assert event["permanent"] is True
    assert event["status"].status.startswith("5.")
    assert event["report"] is result.request.dsn
    assert result.request.signature.bound == "nobody-here@mail.test"


def test_each_recipient_of_a_report_gets_its_own_verdict(client, bounces):
    late = bounce(client, bounce_address("dave@example.net"), "dsn-headers-only.eml")
    failed = bounce(client, bounce_address("Carol.Smith@example.net"), "dsn-headers-only.eml")
    assert late.outcome is failed.outcome is Outcome.IGNORED
    assert [(e["recipient"], e["permanent"], e["status"].status) for e in bounces] == [
        ("dave@example.net", False, "4.4.1"),
        ("carol.smith@example.net", True, "5.2.2"),
    ]


def test_a_rewritten_recipient_is_found_in_the_returned_headers(client, bounces):
    """A forwarder changed the recipient: the report names the new address only."""
    result = bounce(
        client,
        bounce_address("nobody-here@mail.test"),
        replace=[
            (b"Final-Recipient: rfc822; nobody-here", b"Final-Recipient: rfc822; forwarded"),
            (b"Original-Recipient: rfc822;nobody-here", b"Original-Recipient: rfc822;forwarded"),
        ],
    )
    assert result.outcome is Outcome.IGNORED
    [event] = bounces
    assert event["recipient"] == "nobody-here@mail.test" and event["permanent"] is True


def test_forged_bounces_are_refused_before_the_view(client, bounces):
    other = bounce_address("someone-else@example.org")
    result = bounce(client, other)
    assert result.outcome is Outcome.PERMISSION_DENIED
    assert result.dsn_line().endswith("reply address issued to another sender")
    assert (
        bounce(client, "bounces@bugs.example.com").dsn_line().endswith("reply address not signed")
    )
    good = bounce_address("nobody-here@mail.test")
    token = good.split("+")[1].split("@")[0]
    altered = good.replace(token, token[:5] + ("a" if token[5] != "a" else "b") + token[6:])
    assert bounce(client, altered).outcome is Outcome.PERMISSION_DENIED
    assert bounces == []


def test_a_message_that_is_no_report_cannot_be_attributed(client, bounces):
    result = client.send(
        recipient=bounce_address("ann@example.org"), sender="", from_email="ann@example.org"
    )
    assert result.outcome is Outcome.PERMISSION_DENIED
    assert bounces == []


def test_bounce_addresses_expire(client, bounces, settings):
    old = datetime.now(timezone.utc) - timedelta(days=31)
    address = sign_address(
        "bounces@bugs.example.com",
        bind="nobody-here@mail.test",
        expires=timedelta(days=30),
        issued=old,
    )
    assert bounce(client, address).dsn_line().endswith("reply address expired")
    settings.MAIL_BOUNCE_ADDRESS_MAX_AGE = 3600
    fresh = bounce_address("nobody-here@mail.test")
    signature = bounce(client, fresh).request.signature
    assert signature.expires - signature.issued <= timedelta(hours=1)


def test_use_verp_sets_the_envelope_sender_and_keeps_the_from_header(mailoutbox):
    message = mail.EmailMessage(
        "News", "Hello", "Help Desk <help@bugs.example.com>", ["ann@example.org"]
    )
    use_verp(message)
    assert message.from_email.startswith("bounces+")
    assert message.message()["From"] == "Help Desk <help@bugs.example.com>"
    message.send()
    assert mailoutbox[0].from_email == message.from_email
    with pytest.raises(ValueError, match="one message per recipient"):
        use_verp(mail.EmailMessage("x", "y", "a@b.org", ["c@d.org", "e@f.org"]))
