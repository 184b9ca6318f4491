"""
request.authentication and request.sender_verified: only our MTA's
Authentication-Results are read, and only above the hop that brought the
message in; forged and misplaced headers are ignored.
"""

from __future__ import annotations

import pytest

from mailserver import Outcome
from mailserver.test import RequestFactory

OURS = "mx.bugs.example.com"
FROM = "Ann <ann@example.org>"

RECEIVED_OURS = (
    "Received: from mail.example.org (mail.example.org [192.0.2.1])\n"
    f"\tby {OURS} (Postfix) with ESMTPS id 4Xyz; Tue, 1 Dec 2026 10:00:00 +0000"
)
RECEIVED_THEIRS = (
    "Received: from [198.51.100.7] by mail.example.org with ESMTPSA id abc;\n"
    "\tTue, 1 Dec 2026 09:59:59 +0000"
)


def message(*trace: str, body_headers: tuple[str, ...] = (), from_: str = FROM) -> bytes:
    """A message whose header starts with ``trace`` (top first) and holds ``body_headers``."""
    lines = [
        *trace,
        *body_headers,
        f"From: {from_}",
        "To: verified@bugs.example.com",
        "Subject: hello",
        "Message-ID: <1@example.org>",
        "",
        "Hi.",
        "",
    ]
    return "\n".join(lines).encode()


def ar(results: str, authserv_id: str = OURS) -> str:
    return f"Authentication-Results: {authserv_id};\n\t{results}"


def request_for(raw: bytes):
    return RequestFactory().message(raw, recipient="verified@bugs.example.com")


DMARC_PASS = "dkim=pass header.d=example.org header.s=s1; dmarc=pass header.from=example.org"


def test_our_results_above_our_received_header_are_read():
    request = request_for(message(ar(DMARC_PASS), RECEIVED_OURS, RECEIVED_THEIRS))
    auth = request.authentication
    assert [r.method for r in auth.results] == ["dkim", "dmarc"]
    assert auth.dmarc.result == "pass" and auth.dkim[0].header_d == "example.org"
    assert request.sender_verified is True
    assert request.sender_verified_reason == "DMARC pass for example.org"


def test_results_a_milter_put_just_below_our_received_header_are_read_too():
    request = request_for(message(RECEIVED_OURS, ar(DMARC_PASS), RECEIVED_THEIRS))
    assert request.sender_verified is True


def test_a_header_claiming_our_id_below_the_hop_that_brought_the_message_is_forged():
    forged = ar("dmarc=pass header.from=example.org")
    request = request_for(message(RECEIVED_OURS, RECEIVED_THEIRS, forged))
    assert request.authentication.results == []
    assert request.sender_verified is False
    assert request.sender_verified_reason == "no trusted authentication results"
    [why] = request.authentication.ignored
    assert "below Received header 2" in why and "MAIL_TRUSTED_HOPS = 1" in why


def test_our_topmost_verdict_wins_over_one_injected_by_a_direct_sender():
    """No foreign Received header: the forged header sits in the trusted block, below ours."""
    ours = ar("dmarc=fail header.from=example.org")
    forged = ar("dmarc=pass header.from=example.org")
    request = request_for(message(RECEIVED_OURS, ours, forged))
    assert request.authentication.dmarc.result == "fail"
    assert request.sender_verified is False
    assert request.sender_verified_reason == "DMARC fail for example.org"


def test_other_authserv_ids_are_not_ours():
    theirs = ar(DMARC_PASS, authserv_id="mx.example.org")
    request = request_for(message(theirs, RECEIVED_OURS))
    assert request.authentication.results == []
    assert request.sender_verified is False


def test_more_trusted_hops(settings):
    """The MX's results sit below the Received header of the internal relay."""
    relay = "Received: from mx.bugs.example.com by app.bugs.example.com; Tue, 1 Dec 2026 10:00:01"
    raw = message(relay, RECEIVED_OURS, ar(DMARC_PASS), RECEIVED_THEIRS)
    assert request_for(raw).sender_verified is False
    settings.MAIL_TRUSTED_HOPS = 2
    assert request_for(raw).sender_verified is True


def test_no_configured_id_says_so(settings):
    settings.MAIL_AUTHSERV_IDS = []
    request = request_for(message(ar(DMARC_PASS), RECEIVED_OURS))
    assert request.sender_verified is False
    assert "MAIL_AUTHSERV_IDS is empty" in request.sender_verified_reason


@pytest.mark.parametrize(
    "results, from_, verified, reason",
    [
        (DMARC_PASS, FROM, True, "DMARC pass for example.org"),
        # DMARC passed for another domain than this From.
        ("dmarc=pass header.from=example.net", FROM, False, "no DMARC result for example.org"),
        (
            "dkim=pass header.d=example.org; dmarc=none header.from=example.org",
            FROM,
            True,
            "DKIM pass for example.org, aligned with example.org (no DMARC record)",
        ),
        (
            "dkim=pass header.d=example.org",
            "ann@mail.example.org",
            True,
            "DKIM pass for example.org, aligned with mail.example.org (no DMARC result)",
        ),
        # A signature of another organisation is not aligned...
        ("dkim=pass header.d=esp.example.net", FROM, False, "no DMARC result"),
        # ...nor one of a public suffix.
        ("dkim=pass header.d=co.uk", "ann@example.co.uk", False, "no DMARC result"),
        ("dkim=fail header.d=example.org", FROM, False, "no aligned DKIM signature passes"),
        ("spf=pass smtp.mailfrom=example.org", FROM, False, "no DMARC result"),
        (DMARC_PASS, "ann@example.org, bob@example.org", False, "not one From address"),
        ("dmarc=quarantine header.from=example.org", FROM, False, "DMARC quarantine"),
    ],
)
def test_the_verdict_and_its_reason(results, from_, verified, reason):
    request = request_for(message(ar(results), RECEIVED_OURS, from_=from_))
    assert request.sender_verified is verified
    assert reason in request.sender_verified_reason


def test_folded_and_commented_headers_and_arc():
    header = (
        f"Authentication-Results: (our MTA) {OURS};\n"
        "\tdkim=pass (2048-bit key; unprotected) header.d=example.org\n"
        "\theader.i=@example.org header.s=s1 header.b=AbCd;\n"
        "\tarc=pass (i=1 spf=pass) smtp.remote-ip=192.0.2.1;\n"
        "\tdmarc=pass (p=reject dis=none) header.from=example.org"
    )
    auth = request_for(message(header, RECEIVED_OURS)).authentication
    assert auth.arc.result == "pass"
    assert auth.dkim[0].header_s == "s1"
    assert auth.sender_verified


def test_an_unreadable_header_is_ignored_with_its_reason():
    request = request_for(message(ar("dkim pass ;;; garbage"), RECEIVED_OURS))
    assert request.authentication.results == []
    assert "unreadable" in request.authentication.ignored[0]


@pytest.mark.django_db
def test_verified_sender_required(client):
    good = message(ar(DMARC_PASS), RECEIVED_OURS)
    assert client.send(good, recipient="verified@bugs.example.com").outcome is Outcome.IGNORED
    bad = message(ar("dmarc=fail header.from=example.org"), RECEIVED_OURS)
    result = client.send(bad, recipient="verified@bugs.example.com")
    assert result.outcome is Outcome.PERMISSION_DENIED
    assert result.dsn_line() == (
        "5.7.1 <ann@example.org>: sender not verified (DMARC fail for example.org)"
    )
