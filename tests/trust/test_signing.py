"""
Signed reply addresses: made by reverse(..., sign=True), refused with 5.7.1
before any view when missing, altered, moved, expired or sent by someone
else, and read by the view as request.signature.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from mailserver import Outcome
from mailserver.addresses import MAX_LOCAL_PART, split
from mailserver.exceptions import BadAddressSignature, ImproperlyConfigured, NoReverseMatch
from mailserver.resolvers import resolve, reverse
from mailserver.signing import ALPHABET, MAX_TOKEN_LENGTH, check_token, make_token, sign_address

from . import views

pytestmark = pytest.mark.django_db  # the middleware looks up request.user

SENDER = "ann@example.org"


def send(client, recipient, from_email=SENDER, **kwargs):
    return client.send(recipient=recipient, sender=from_email, from_email=from_email, **kwargs)


def token_of(address: str) -> str:
    local, _ = split(address)
    return local.split("+", 1)[1]


def refused(result, reason: str) -> bool:
    return (
        result.outcome is Outcome.PERMISSION_DENIED
        and result.dsn_line().startswith("5.7.1 ")
        and result.dsn_line().endswith(reason)
    )


# Making them --------------------------------------------------------------


def test_a_signed_address_reaches_its_route_and_the_view_reads_the_token(client):
    before = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    address = reverse("reply", kwargs={"ticket": 42}, sign=True, expires=timedelta(days=7))
    local, domain = split(address)
    assert domain == "bugs.example.com" and local.startswith("ticket-42+")

    result = send(client, address)
    assert result.outcome is Outcome.IGNORED
    [call] = views.calls
    assert call["kwargs"] == {"ticket": "42"}
    signature = call["signature"]
    assert signature is result.request.signature
    assert signature.address == "ticket-42@bugs.example.com"
    assert signature.token == token_of(address)
    assert before <= signature.issued <= datetime.now(timezone.utc)
    assert signature.expires - signature.issued == timedelta(days=7)
    assert not signature.is_bound and signature.bound is None


def test_tokens_are_lower_case_base32_and_fit_in_a_local_part():
    longest = make_token("x@y", bind="someone@example.org", expires=3600)
    assert len(longest) == MAX_TOKEN_LENGTH <= 43
    assert set(longest) <= set(ALPHABET)
    # Room for 20 characters of the route's own text with every option on.
    local = "r" * (MAX_LOCAL_PART - MAX_TOKEN_LENGTH - 1)
    assert len(split(sign_address(f"{local}@y.org", bind="a@b.org", expires=60))[0]) == 64
    with pytest.raises(ValueError, match="RFC 5321 allows 64"):
        sign_address(f"{local}x@y.org", bind="a@b.org", expires=60)


def test_reverse_refuses_what_would_never_be_checked_or_never_pass():
    with pytest.raises(NoReverseMatch, match="pass sign=True"):
        reverse("reply", kwargs={"ticket": 1})
    with pytest.raises(NoReverseMatch, match="not signed"):
        reverse("open", sign=True)
    with pytest.raises(NoReverseMatch, match="not signed"):
        reverse("open", bind=SENDER)


def test_signing_needs_a_subaddress_delimiter(settings):
    settings.MAIL_SUBADDRESS_DELIMITER = ""
    with pytest.raises(ImproperlyConfigured, match="MAIL_SUBADDRESS_DELIMITER"):
        reverse("reply", kwargs={"ticket": 1}, sign=True)


def test_the_first_of_several_delimiters_carries_the_token(settings, client):
    settings.MAIL_SUBADDRESS_DELIMITER = "-+"
    # "ticket-1" would be split at its "-": an include-free route without it.
    address = reverse("lists:digest", sign=True)
    assert split(address)[0].startswith("digest-")
    assert send(client, address).outcome is Outcome.IGNORED


def test_a_signed_include_covers_every_route_inside(client):
    address = reverse("lists:digest", sign=True)
    assert send(client, address).outcome is Outcome.IGNORED
    assert refused(send(client, "digest@lists.example.com"), "reply address not signed")


# Refusing them ------------------------------------------------------------


def test_missing_token_is_refused_before_any_view(client):
    result = send(client, "ticket-42@bugs.example.com")
    assert refused(result, "<ticket-42@bugs.example.com>: reply address not signed")
    assert result.exit_code == 77
    assert views.calls == []


def test_every_altered_character_is_refused(client):
    address = reverse("reply", kwargs={"ticket": 42}, sign=True, bind=SENDER, expires=3600)
    token = token_of(address)
    for i, ch in enumerate(token):
        other = ALPHABET[(ALPHABET.index(ch) + 1) % 32]
        forged = address.replace(token, token[:i] + other + token[i + 1 :])
        result = send(client, forged)
        assert result.outcome is Outcome.PERMISSION_DENIED, (i, forged)
    # A shorter, longer or foreign-alphabet token too.
    for forged_token in (token[:-1], token + "a", token[:-1] + "1", token[:-1] + "="):
        assert send(client, address.replace(token, forged_token)).outcome is (
            Outcome.PERMISSION_DENIED
        )
    assert views.calls == []


def test_a_token_moved_to_another_address_is_refused(client):
    token = token_of(reverse("reply", kwargs={"ticket": 42}, sign=True))
    for elsewhere in (
        f"ticket-43+{token}@bugs.example.com",
        f"digest+{token}@lists.example.com",
        f"ticket-42+{token}@other.example.com",
    ):
        result = send(client, elsewhere)
        assert result.outcome in (Outcome.PERMISSION_DENIED, Outcome.UNKNOWN_RECIPIENT)
        assert result.outcome is not Outcome.IGNORED
    assert refused(
        send(client, f"ticket-43+{token}@bugs.example.com"), "reply address signature invalid"
    )
    assert views.calls == []


def test_a_replayed_address_is_accepted_as_often_as_it_is_used(client):
    """Stateless: the same reply address may be answered twice (until it expires)."""
    address = reverse("reply", kwargs={"ticket": 7}, sign=True, expires=3600)
    assert send(client, address).outcome is Outcome.IGNORED
    assert send(client, address).outcome is Outcome.IGNORED
    assert len(views.calls) == 2


def test_case_folded_tokens_are_accepted(client):
    address = reverse("reply", kwargs={"ticket": 42}, sign=True, bind=SENDER)
    token = token_of(address)
    upper = address.replace(token, token.upper())
    result = send(client, upper, from_email="ANN@Example.ORG")
    assert result.outcome is Outcome.IGNORED
    assert result.request.signature.token == token
    assert result.request.signature.bound == "ann@example.org"


def test_case_insensitive_local_parts(settings, client):
    settings.MAIL_CASE_INSENSITIVE_LOCAL_PART = True
    address = reverse("reply", kwargs={"ticket": 42}, sign=True)
    assert send(client, address.upper()).outcome is Outcome.IGNORED


def test_an_expired_address_is_refused(client):
    past = datetime.now(timezone.utc) - timedelta(days=2)
    address = sign_address("ticket-42@bugs.example.com", expires=timedelta(days=1), issued=past)
    assert refused(send(client, address), "reply address expired")
    fresh = sign_address("ticket-42@bugs.example.com", expires=timedelta(days=3), issued=past)
    assert send(client, fresh).outcome is Outcome.IGNORED


def test_max_age_caps_every_address(settings, client):
    old = datetime.now(timezone.utc) - timedelta(days=40)
    address = sign_address("ticket-42@bugs.example.com", issued=old)
    assert send(client, address).outcome is Outcome.IGNORED
    settings.MAIL_SIGNING_MAX_AGE = timedelta(days=30)
    assert refused(send(client, address), "reply address expired")
    settings.MAIL_SIGNING_MAX_AGE = 60 * 24 * 3600
    assert send(client, address).outcome is Outcome.IGNORED


def test_keys_rotate_through_secret_key_fallbacks(settings, client):
    address = reverse("reply", kwargs={"ticket": 42}, sign=True, bind=SENDER)
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-key"
    assert refused(send(client, address), "reply address signature invalid")
    settings.SECRET_KEY_FALLBACKS = [old_key]
    result = send(client, address)
    assert result.outcome is Outcome.IGNORED
    assert result.request.signature.bound == SENDER
    # New addresses are made with the new key.
    settings.SECRET_KEY_FALLBACKS = []
    assert send(client, reverse("reply", kwargs={"ticket": 42}, sign=True)).outcome is (
        Outcome.IGNORED
    )


# Bound to a sender ----------------------------------------------------------


def test_a_bound_address_takes_mail_from_its_sender_only(client):
    address = reverse("reply", kwargs={"ticket": 42}, sign=True, bind="Ann <Ann@Example.org>")
    result = send(client, address, from_email="ann@example.org")
    assert result.outcome is Outcome.IGNORED
    assert result.request.signature.bound == "ann@example.org"
    result = send(client, address, from_email="bob@example.org")
    assert refused(result, "reply address issued to another sender")
    assert len(views.calls) == 1


def test_binding_is_checked_on_the_from_header_not_the_envelope(client):
    address = reverse("reply", kwargs={"ticket": 42}, sign=True, bind=SENDER)
    result = client.send(recipient=address, sender="bounces@esp.example", from_email=SENDER)
    assert result.outcome is Outcome.IGNORED


def test_revoking_a_users_addresses(settings, client):
    """The recipe of the README: a per-user value folded into the token."""
    keys = {"ann@example.org": "k1"}
    settings.MAIL_SIGNING_USER_KEY = keys.get
    address = reverse("reply", kwargs={"ticket": 42}, sign=True, bind=SENDER)
    other = reverse("reply", kwargs={"ticket": 42}, sign=True, bind="bob@example.org")
    assert send(client, address).outcome is Outcome.IGNORED
    keys["ann@example.org"] = "k2"  # revoke every address made for ann
    assert refused(send(client, address), "reply address issued to another sender")
    assert send(client, other, from_email="bob@example.org").outcome is Outcome.IGNORED
    assert send(
        client, reverse("reply", kwargs={"ticket": 42}, sign=True, bind=SENDER)
    ).outcome is (Outcome.IGNORED)


def test_resolve_checks_the_token_but_leaves_the_binding_for_the_message():
    address = reverse("reply", kwargs={"ticket": 42}, sign=True, bind=SENDER)
    match = resolve(address)
    assert match.signature.is_bound and match.signature.bound is None
    with pytest.raises(BadAddressSignature):
        resolve("ticket-42+" + "a" * 27 + "@bugs.example.com")


def test_check_token_names_what_is_wrong():
    token = make_token("a@b.org", expires=60)
    assert check_token("a@b.org", token).address == "a@b.org"
    with pytest.raises(BadAddressSignature, match="expired"):
        check_token("a@b.org", token, now=datetime.now(timezone.utc) + timedelta(minutes=2))
    with pytest.raises(BadAddressSignature, match="not signed"):
        check_token("a@b.org", "")


def test_resolvemail_shows_signatures_and_refusals(capsys):
    from django.core.management import call_command

    address = reverse("reply", kwargs={"ticket": 42}, sign=True, expires=3600)
    call_command("resolvemail", address)
    out = capsys.readouterr().out
    assert "signed, issued" in out and "expires" in out
    with pytest.raises(SystemExit):
        call_command("resolvemail", "ticket-42@bugs.example.com")
    assert "refused, 5.7.1 <ticket-42@bugs.example.com>: reply address not signed" in (
        capsys.readouterr().out
    )
