"""
The conductor: a message composed or pasted in the admin, sent through the
dispatch core with the store (transport "conductor"), its outcome, route
and reply shown; a dry run keeps and sends nothing.
"""

from pathlib import Path

import pytest
from django.contrib.admin.models import LogEntry
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile

from mailserver.store.models import InboundMessage, OutboundMessage
from mailserver.test import build_message
from tests.mailapp.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/admin/mailserver_store/inboundmessage/conductor/"


@pytest.fixture
def conductor(client, staff):
    client.force_login(staff("view_inboundmessage", "use_conductor"))
    return client


def compose(**fields):
    return {
        "mode": "compose",
        "from_email": "Bob <bob@example.org>",
        "to": "help@desk.example.com",
        "subject": "Toner low",
        "text": "Third floor.",
        **fields,
    }


def sent_files(settings):
    directory = Path(settings.STORE_TEST_SENT)
    return sorted(directory.glob("*.eml")) if directory.exists() else []


def test_a_composed_message_goes_through_the_core_with_the_store(conductor, settings):
    photo = SimpleUploadedFile("toner.jpg", b"\xff\xd8not really a jpeg", "image/jpeg")
    response = conductor.post(URL, compose(attachments=[photo]))
    assert response.status_code == 200
    page = response.content.decode()
    inbound = InboundMessage.objects.get()
    assert (inbound.transport, inbound.sender, inbound.recipient, inbound.status) == (
        "conductor",
        "bob@example.org",
        "help@desk.example.com",
        "processed",
    )
    assert "250 2.0.0 delivered" in page and "open-ticket" in page
    assert f"message #{inbound.pk}" in page
    ticket = Ticket.objects.get()
    assert f"We opened ticket #{ticket.pk}." in page
    assert OutboundMessage.objects.get().status == "sent" and len(mail.outbox) == 1
    with inbound.open_raw() as raw:
        stored = raw.read()
    assert b'filename="toner.jpg"' in stored and b"Subject: Toner low" in stored
    assert LogEntry.objects.get().change_message == "Sent through the conductor."


def test_raw_source_is_dispatched_with_its_envelope_from_its_headers(conductor):
    raw = build_message(
        from_email="Carol <carol@example.org>",
        to="help@desk.example.com",
        cc="nobody@desk.example.com",
        subject="Pasted",
        text="as the MTA would hand it over",
    )
    response = conductor.post(URL, {"mode": "raw", "raw": raw.decode()})
    page = response.content.decode()
    recipients = dict(InboundMessage.objects.values_list("recipient", "status"))
    assert recipients == {
        "help@desk.example.com": "processed",
        "nobody@desk.example.com": "bounced",
    }
    assert set(InboundMessage.objects.values_list("sender", flat=True)) == {"carol@example.org"}
    assert "550 5.1.1" in page and "250 2.0.0 delivered" in page
    # Once more: the store knows it, and says so.
    again = conductor.post(URL, {"mode": "raw", "raw": raw.decode()}).content.decode()
    assert "answered from its record" in again
    assert Ticket.objects.count() == 1


def test_a_dry_run_keeps_nothing_and_sends_nothing_but_shows_the_reply(conductor, settings):
    response = conductor.post(URL, compose(dry_run="on"))
    page = response.content.decode()
    assert "The reply that would be sent" in page and "We opened ticket #" in page
    assert "nothing kept (dry run)" in page
    assert not InboundMessage.objects.exists() and not Ticket.objects.exists()
    assert not OutboundMessage.objects.exists() and mail.outbox == []


@pytest.mark.parametrize("debug", [True, False])
def test_the_traceback_shows_with_debug_only(conductor, settings, debug):
    settings.DEBUG = debug
    response = conductor.post(URL, compose(to="fragile@desk.example.com"))
    page = response.content.decode()
    assert "451 4.3.0" in page
    assert ("KeyError in the ticket parser (the bug)" in page) is debug
    assert ('id="mailstore-traceback"' in page) is debug
    assert InboundMessage.objects.get().status == "deferred"


def test_what_cannot_be_sent_is_said_and_nothing_is_dispatched(conductor):
    for data, error in [
        (compose(to=""), "Say whom it is to"),
        (compose(from_email=""), "Say whom it is from"),
        (compose(recipients="not an address"), "Not an address"),
        ({"mode": "raw", "raw": "  "}, "Paste the message"),
    ]:
        page = conductor.post(URL, data).content.decode()
        assert error in page, error
    assert not InboundMessage.objects.exists()


def test_the_conductor_needs_its_permission(client, staff):
    assert client.get(URL).status_code == 302  # to the login page
    client.force_login(staff("view_inboundmessage"))
    assert client.get(URL).status_code == 403
    assert client.post(URL, compose()).status_code == 403
    assert not InboundMessage.objects.exists()
