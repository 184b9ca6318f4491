"""runmailserver refuses a signed route's bad token at RCPT time, before any data."""

from mailserver.resolvers import reverse

from . import views
from .conftest import MESSAGE


def test_a_bad_token_is_refused_at_rcpt_time_and_a_good_one_delivered(lmtp):
    good = reverse("signed", kwargs={"n": 7}, sign=True, bind="ann@example.org", expires=600)
    local, domain = good.split("@")
    base, token = local.split("+")
    # A character of the mac (the last 8 are the binding, checked after DATA).
    i = 15
    tampered = f"{base}+{token[:i]}{'b' if token[i] == 'a' else 'a'}{token[i + 1 :]}@{domain}"

    assert lmtp.command("MAIL FROM:<ann@example.org>") == "250 2.1.0 OK"
    assert lmtp.command(f"RCPT TO:<{tampered}>") == (
        "550 5.7.1 <signed-7@example.com>: reply address signature invalid"
    )
    assert lmtp.command("RCPT TO:<signed-7@example.com>") == (
        "550 5.7.1 <signed-7@example.com>: reply address not signed"
    )
    assert lmtp.command(f"RCPT TO:<{base}+{token.upper()}@{domain}>") == "250 2.1.5 OK"
    assert lmtp.command("DATA").startswith("354")
    lmtp.data(MESSAGE)  # From: ann@example.org, whom the token was made for
    assert lmtp.reply().startswith("250 ")
    [(_, request)] = views.seen
    assert request.signature.bound == "ann@example.org"


def test_the_binding_is_checked_after_data(lmtp):
    address = reverse("signed", kwargs={"n": 8}, sign=True, bind="bob@example.org")
    replies = lmtp.deliver([address])  # the message is From: ann@example.org
    assert replies[1] == "250 2.1.5 OK"
    assert replies[-1] == "550 5.7.1 <signed-8@example.com>: reply address issued to another sender"
    assert views.seen == []
