"""
SenderAuthenticationMiddleware logs in a user only for a proved sender: a
verified From address, or the sender a signed reply address was made for.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from mailserver import Outcome
from mailserver.resolvers import reverse

from . import views
from .test_authresults import DMARC_PASS, RECEIVED_OURS, ar, message

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def ann(settings):
    settings.MAIL_MIDDLEWARE = ["mailserver.auth.SenderAuthenticationMiddleware"]
    return User.objects.create_user("ann", email="ann@example.org")


def test_a_claimed_from_address_logs_nobody_in(client):
    result = client.send(recipient="staff@bugs.example.com", from_email="ann@example.org")
    assert result.outcome is Outcome.PERMISSION_DENIED
    assert result.dsn_line() == "5.7.1 <ann@example.org>: sender not allowed"
    assert result.request.user.is_anonymous


def test_a_verified_sender_is_logged_in(client):
    raw = message(ar(DMARC_PASS), RECEIVED_OURS).replace(b"To: verified@", b"To: staff@")
    result = client.send(raw, recipient="staff@bugs.example.com")
    assert result.outcome is Outcome.IGNORED
    assert views.calls == [{"route": "staff", "user": "ann"}]


def test_the_sender_a_signed_address_was_made_for_is_logged_in(client):
    address = reverse("reply", kwargs={"ticket": 1}, sign=True, bind="ann@example.org")
    result = client.send(recipient=address, from_email="Ann <ann@example.org>")
    assert result.outcome is Outcome.IGNORED
    assert views.calls[0]["user"] == "ann"


def test_an_unbound_signed_address_proves_nobody(client):
    address = reverse("reply", kwargs={"ticket": 1}, sign=True)
    client.send(recipient=address, from_email="ann@example.org")
    assert views.calls[0]["user"] == ""


def test_a_failed_dmarc_logs_nobody_in(client):
    raw = message(ar("dmarc=fail header.from=example.org"), RECEIVED_OURS).replace(
        b"To: verified@", b"To: staff@"
    )
    assert client.send(raw, recipient="staff@bugs.example.com").request.user.is_anonymous
