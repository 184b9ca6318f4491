"""
What a person does to messages in the admin: each action under its own
permission, written to the admin log, one at a time and in bulk.

Replays dispatch on connections of their own (as a transport would), which
see only what is committed: these tests commit (transaction=True).
"""

import pytest
from django.contrib.admin.models import CHANGE, DELETION, LogEntry

from mailserver.store.admin import base as admin_base
from mailserver.store.models import InboundMessage, OutboundMessage
from tests.mail import use_backend
from tests.mailapp.models import Ticket

from .conftest import deliver

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "/admin/mailserver_store/inboundmessage"
REPLIES = "/admin/mailserver_store/outboundmessage"
VIEW = ("view_inboundmessage", "view_outboundmessage")

FRAGILE = (
    b"From: Ann <ann@example.org>\n"
    b"To: fragile@desk.example.com\n"
    b"Subject: Refund please\n"
    b"Message-ID: <refund1@example.org>\n"
    b"\n"
    b"Order 42\n"
)


def log_of(obj):
    return list(
        LogEntry.objects.filter(object_id=str(obj.pk)).values_list("action_flag", "change_message")
    )


@pytest.fixture
def deferred():
    assert deliver(FRAGILE, "fragile@desk.example.com").outcome.is_temporary
    return InboundMessage.objects.get(recipient="fragile@desk.example.com")


def test_each_action_needs_its_own_permission(client, staff, deferred):
    client.force_login(staff(*VIEW))
    for what in ("replay", "reroute", "incinerate"):
        url = f"{BASE}/{deferred.pk}/{what}/"
        assert client.get(url).status_code == 403, what
        assert client.post(url, {"address": "help@desk.example.com"}).status_code == 403, what
    page = client.get(f"{BASE}/{deferred.pk}/change/").content.decode()
    assert "mailstore-replay" not in page and "mailstore-incinerate" not in page
    listing = client.get(f"{BASE}/").content.decode()
    assert "replay_selected" not in listing and "incinerate_selected" not in listing
    assert "mailstore-conductor" not in listing
    # Nothing happened.
    deferred.refresh_from_db()
    assert deferred.status == "deferred" and deferred.attempts == 1
    assert LogEntry.objects.count() == 0

    client.force_login(staff(*VIEW, "replay_inboundmessage", username="replayer"))
    assert client.get(f"{BASE}/{deferred.pk}/replay/").status_code == 200
    assert client.get(f"{BASE}/{deferred.pk}/incinerate/").status_code == 403
    listing = client.get(f"{BASE}/").content.decode()
    assert "replay_selected" in listing and "incinerate_selected" not in listing


def test_replay_after_the_fix_asks_first_then_runs_and_logs(client, staff, settings, deferred):
    client.force_login(staff(*VIEW, "replay_inboundmessage"))
    settings.ADMIN_TEST_FIXED = True
    confirm = client.get(f"{BASE}/{deferred.pk}/replay/").content.decode()
    assert "dispatched again as stored" in confirm and "handled already" not in confirm
    assert Ticket.objects.count() == 0  # asking does nothing
    response = client.post(f"{BASE}/{deferred.pk}/replay/", follow=True)
    assert response.redirect_chain[-1][0] == f"{BASE}/{deferred.pk}/change/"
    deferred.refresh_from_db()
    assert (deferred.status, deferred.outcome, deferred.attempts) == ("processed", "delivered", 2)
    assert Ticket.objects.count() == 1
    [(flag, text)] = log_of(deferred)
    assert flag == CHANGE
    assert text == "Replayed: 2.0.0 delivered, route fragile; its reply was sent."
    assert text in response.content.decode()
    assert OutboundMessage.objects.get(inbound=deferred).status == "sent"


def test_replaying_a_handled_message_says_its_view_runs_again(client, staff):
    deliver()
    inbound = InboundMessage.objects.get()
    client.force_login(staff(*VIEW, "replay_inboundmessage"))
    confirm = client.get(f"{BASE}/{inbound.pk}/replay/").content.decode()
    assert "handled already" in confirm and "runs its view again" in confirm
    client.post(f"{BASE}/{inbound.pk}/replay/")
    assert Ticket.objects.count() == 2
    [(_, text)] = log_of(inbound)
    assert "its view run again on purpose (it had been handled already)" in text


def test_a_replay_whose_view_still_fails_says_so(client, staff, deferred):
    client.force_login(staff(*VIEW, "replay_inboundmessage"))
    response = client.post(f"{BASE}/{deferred.pk}/replay/", follow=True)
    assert "Replayed: 4.3.0 temporary failure" in response.content.decode()
    deferred.refresh_from_db()
    assert (deferred.status, deferred.attempts) == ("deferred", 2)
    assert "KeyError in the ticket parser" in deferred.last_error


def test_reroute_dispatches_to_the_address_given_and_logs_both_messages(client, staff, deferred):
    client.force_login(staff(*VIEW, "reroute_inboundmessage"))
    refused = client.post(f"{BASE}/{deferred.pk}/reroute/", {"address": "not an address"})
    assert refused.status_code == 200 and "Not an address" in refused.content.decode()
    assert InboundMessage.objects.count() == 1
    response = client.post(f"{BASE}/{deferred.pk}/reroute/", {"address": "help@desk.example.com"})
    rerouted = InboundMessage.objects.exclude(pk=deferred.pk).get()
    assert response["Location"] == f"{BASE}/{rerouted.pk}/change/"
    assert (rerouted.recipient, rerouted.original_recipient, rerouted.transport) == (
        "help@desk.example.com",
        "fragile@desk.example.com",
        "reroute",
    )
    assert (rerouted.status, rerouted.route) == ("processed", "open-ticket")
    assert log_of(deferred)[0][1].startswith(
        f"Rerouted to <help@desk.example.com> (message #{rerouted.pk}): 2.0.0 delivered"
    )
    assert log_of(rerouted) == [
        (CHANGE, f"Rerouted here from message #{deferred.pk} to <fragile@desk.example.com>.")
    ]
    page = client.get(f"{BASE}/{rerouted.pk}/change/").content.decode()
    assert "The same message for other recipients" in page and f"message #{deferred.pk}" in page


def test_incinerate_deletes_the_message_and_its_file_and_logs_it(client, staff, store, settings):
    settings.MAIL_STORE_ROW_LIMIT = 0  # to a file, however small
    deliver()
    inbound = InboundMessage.objects.get()
    path = store / inbound.raw_name
    client.force_login(staff(*VIEW, "incinerate_inboundmessage"))
    confirm = client.get(f"{BASE}/{inbound.pk}/incinerate/").content.decode()
    assert "cannot be undone" in confirm and path.exists()
    response = client.post(f"{BASE}/{inbound.pk}/incinerate/", follow=True)
    assert "Incinerated 1 message and 1 raw file." in response.content.decode()
    assert not InboundMessage.objects.exists() and not OutboundMessage.objects.exists()
    assert not path.exists()
    assert log_of(inbound) == [(DELETION, "Incinerated, with its attempts and replies.")]


def test_incinerate_of_a_message_kept_in_its_row_counts_no_file(client, staff, store):
    deliver()
    inbound = InboundMessage.objects.get()
    assert inbound.raw is not None and not (store / inbound.raw_name).exists()
    client.force_login(staff(*VIEW, "incinerate_inboundmessage"))
    response = client.post(f"{BASE}/{inbound.pk}/incinerate/", follow=True)
    assert "Incinerated 1 message and 0 raw files." in response.content.decode()
    assert not InboundMessage.objects.exists()


def test_bulk_actions_confirm_first_then_act_on_each(client, staff, settings, deferred):
    deliver()
    handled = InboundMessage.objects.get(recipient="help@desk.example.com")
    client.force_login(
        staff(*VIEW, "replay_inboundmessage", "incinerate_inboundmessage", "reroute_inboundmessage")
    )
    settings.ADMIN_TEST_FIXED = True
    selected = {"_selected_action": [deferred.pk, handled.pk]}
    confirm = client.post(f"{BASE}/", {"action": "replay_selected", **selected})
    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "1 of them was handled already" in page and 'name="post" value="yes"' in page
    assert Ticket.objects.count() == 1
    done = client.post(f"{BASE}/", {"action": "replay_selected", "post": "yes", **selected})
    assert done.status_code == 302
    assert Ticket.objects.count() == 3  # the fixed view's first, the handled one's second
    assert all(len(log_of(m)) == 1 for m in (deferred, handled))

    form = client.post(f"{BASE}/", {"action": "reroute_selected", **selected})
    assert 'name="address"' in form.content.decode()
    client.post(
        f"{BASE}/",
        {"action": "reroute_selected", "post": "yes", "address": "quiet@desk.example.com"},
    )
    assert not InboundMessage.objects.filter(recipient="quiet@desk.example.com").exists()
    client.post(
        f"{BASE}/",
        {
            "action": "reroute_selected",
            "post": "yes",
            "address": "quiet@desk.example.com",
            **selected,
        },
    )
    assert InboundMessage.objects.filter(recipient="quiet@desk.example.com").count() == 2

    client.post(f"{BASE}/", {"action": "incinerate_selected", **selected})
    assert InboundMessage.objects.count() == 4
    client.post(f"{BASE}/", {"action": "incinerate_selected", "post": "yes", **selected})
    assert set(InboundMessage.objects.values_list("recipient", flat=True)) == {
        "quiet@desk.example.com"
    }


def test_a_bulk_action_on_more_rows_than_the_limit_is_refused(client, staff, monkeypatch, deferred):
    deliver()
    monkeypatch.setattr(admin_base, "BULK_LIMIT", 1)
    client.force_login(staff(*VIEW, "replay_inboundmessage"))
    response = client.post(
        f"{BASE}/",
        {
            "action": "replay_selected",
            "select_across": "1",
            "index": "0",
            "_selected_action": [deferred.pk],
        },
        follow=True,
    )
    assert "At most 1 inbound messages at once" in response.content.decode()
    deferred.refresh_from_db()
    assert deferred.attempts == 1


def test_resend_sends_a_failed_reply_under_its_own_permission(client, staff, settings):
    use_backend(settings, "tests.store.backends.DownBackend")
    deliver()
    reply = OutboundMessage.objects.get()
    OutboundMessage.objects.filter(pk=reply.pk).update(status="failed")
    client.force_login(staff(*VIEW))
    page = client.get(f"{REPLIES}/{reply.pk}/change/").content.decode()
    assert "Resend now" not in page and "] Printer on fire" in page
    assert client.post(f"{REPLIES}/{reply.pk}/resend/").status_code == 403

    use_backend(settings, "tests.store.backends.EmailBackend")
    client.force_login(staff(*VIEW, "resend_outboundmessage", username="sender"))
    assert "Resend now" in client.get(f"{REPLIES}/{reply.pk}/change/").content.decode()
    response = client.post(f"{REPLIES}/{reply.pk}/resend/", follow=True)
    assert "Resent 1: 1 sent" in response.content.decode()
    reply.refresh_from_db()
    assert reply.status == "sent"
    assert log_of(reply) == [(CHANGE, "Resent: now sent.")]
    bulk = client.post(
        f"{REPLIES}/", {"action": "resend_selected", "_selected_action": [reply.pk]}, follow=True
    )
    assert "Nothing to resend: sent already." in bulk.content.decode()
