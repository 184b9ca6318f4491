"""
In-process verification (MAIL_VERIFY_SENDERS): dkimpy checks every DKIM
signature and authheaders decides DMARC, with keys made in the test and DNS
records served from MAIL_DNS_RESOLVER. Nothing touches the network: a name
the test did not publish has no record.
"""

from __future__ import annotations

import base64

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailserver.test import RequestFactory

MESSAGE = (
    b"From: Ann <ann@example.org>\r\n"
    b"To: verified@bugs.example.com\r\n"
    b"Subject: Printer\r\n"
    b"Message-ID: <1@example.org>\r\n"
    b"\r\n"
    b"It is on fire.\r\n"
)


class Zone(dict):
    """TXT records by name; what the resolver hook answers, and what it was asked."""

    def __init__(self, *args):
        super().__init__(*args)
        self.asked: list[str] = []

    def __call__(self, name: str) -> list[str]:
        self.asked.append(name)
        return list(self.get(name, []))


def new_key(zone: Zone, domain: str, selector: str = "s1") -> bytes:
    """A fresh RSA key: its public half published in ``zone``, the private half returned."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    zone[f"{selector}._domainkey.{domain}"] = [
        "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode()
    ]
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def sign(raw: bytes, domain: str, key: bytes, selector: str = "s1") -> bytes:
    header = dkim.sign(
        raw,
        selector.encode(),
        domain.encode(),
        key,
        include_headers=[b"from", b"to", b"subject", b"message-id"],
    )
    return header + raw


@pytest.fixture
def zone(settings):
    zone = Zone({"_dmarc.example.org": ["v=DMARC1; p=reject"]})
    settings.MAIL_VERIFY_SENDERS = True
    settings.MAIL_DNS_RESOLVER = zone
    return zone


def verified(raw: bytes):
    request = RequestFactory().message(raw, recipient="verified@bugs.example.com")
    return request.sender_verified, request.sender_verified_reason, request.authentication


def test_a_valid_signature_of_the_from_domain_passes_dmarc(zone):
    raw = sign(MESSAGE, "example.org", new_key(zone, "example.org"))
    ok, reason, auth = verified(raw)
    assert ok and reason == "DMARC pass for example.org"
    [result] = auth.dkim
    assert (result.result, result.header_d, result.header_s) == ("pass", "example.org", "s1")
    assert auth.headers[-1].authserv_id == "mailserver.in-process"
    assert "s1._domainkey.example.org" in zone.asked and "_dmarc.example.org" in zone.asked


def test_a_tampered_message_fails(zone):
    raw = sign(MESSAGE, "example.org", new_key(zone, "example.org"))
    ok, reason, auth = verified(raw.replace(b"on fire", b"fine now"))
    assert not ok and reason == "DMARC fail for example.org"
    assert auth.dkim[0].result == "fail"
    ok, _, _ = verified(raw.replace(b"Subject: Printer", b"Subject: Payroll"))
    assert not ok


def test_every_signature_is_checked_not_only_the_top_one(zone):
    """A mailing list signs above the author: DMARC passes on the author's signature."""
    author = sign(MESSAGE, "example.org", new_key(zone, "example.org"))
    listed = sign(author, "lists.example.net", new_key(zone, "lists.example.net"))
    ok, reason, auth = verified(listed)
    assert [(r.header_d, r.result) for r in auth.dkim] == [
        ("lists.example.net", "pass"),
        ("example.org", "pass"),
    ]
    assert ok and reason == "DMARC pass for example.org"


def test_a_valid_signature_of_another_domain_does_not_vouch_for_the_from(zone):
    raw = sign(MESSAGE, "evil.example", new_key(zone, "evil.example"))
    ok, reason, auth = verified(raw)
    assert auth.dkim[0].result == "pass"
    assert not ok and reason == "DMARC fail for example.org"


def test_no_dmarc_record_an_aligned_signature_verifies(zone):
    del zone["_dmarc.example.org"]
    raw = sign(MESSAGE, "example.org", new_key(zone, "example.org"))
    ok, reason, _ = verified(raw)
    assert ok and reason == "DKIM pass for example.org, aligned with example.org (no DMARC record)"
    ok, reason, _ = verified(MESSAGE)
    assert (
        not ok and reason == "no DMARC record for example.org and no aligned DKIM signature passes"
    )


def test_a_key_that_is_not_published_fails(zone):
    key = new_key(Zone(), "example.org")  # published nowhere the hook serves
    ok, _, auth = verified(sign(MESSAGE, "example.org", key))
    assert not ok and auth.dkim[0].result in ("fail", "permerror")


def test_a_key_that_is_not_the_signers_fails(zone):
    new_key(zone, "example.org")
    forger = new_key(Zone(), "example.org")
    ok, reason, auth = verified(sign(MESSAGE, "example.org", forger))
    assert not ok and auth.dkim[0].result == "fail"


def test_dns_failure_is_a_temporary_error(zone, settings):
    raw = sign(MESSAGE, "example.org", new_key(zone, "example.org"))

    def broken(name):
        raise LookupError(f"DNS lookup of {name} failed: timeout")

    settings.MAIL_DNS_RESOLVER = broken
    ok, _, auth = verified(raw)
    assert not ok and auth.dkim[0].result == "temperror"


def test_the_mtas_verdict_comes_first(zone, settings):
    """With a trusted DMARC result from the MTA, nothing is verified in-process."""
    settings.MAIL_AUTHSERV_IDS = ["mx.bugs.example.com"]
    raw = b"Authentication-Results: mx.bugs.example.com; dmarc=fail header.from=example.org\r\n"
    raw += sign(MESSAGE, "example.org", new_key(zone, "example.org"))
    zone.asked.clear()
    ok, reason, _ = verified(raw)
    assert not ok and reason == "DMARC fail for example.org" and zone.asked == []


def test_the_resolver_setting_takes_a_dotted_path(settings):
    from mailserver import dns

    settings.MAIL_DNS_RESOLVER = "tests.trust.test_verify.published"
    assert dns.txt(b"s1._domainkey.example.org.") == ["v=DKIM1; p=x"]


def published(name: str) -> list[str]:
    return ["v=DKIM1; p=x"] if name == "s1._domainkey.example.org" else []
