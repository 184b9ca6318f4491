"""
What a person does to stored mail on purpose: replay (the view runs again,
through today's mailconf), reroute, incinerate, resend a reply.

This module is its own mailconf: its views change with a setting, as a
view changes when a fix is deployed.
"""

import os

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.utils import timezone

from mailserver import EmailResponse, Outcome
from mailserver.mailbox import mailbox
from mailserver.store import outbox
from mailserver.store.models import InboundAttempt, InboundMessage, OutboundMessage
from mailserver.store.replay import replay
from mailserver.store.retention import incinerate
from mailserver.test import Client
from tests.mail import use_backend
from tests.mailapp.models import Ticket

pytestmark = pytest.mark.django_db


def desk(request):
    """Opens a ticket and replies; with REPLAY_TEST_VIEW = "bug", fails first."""
    behaviour = getattr(django_settings, "REPLAY_TEST_VIEW", "ok")
    if behaviour == "bug":
        raise RuntimeError("a bug in the view")
    ticket = Ticket.objects.create(subject=request.subject)
    if behaviour == "refuse":
        from mailserver.exceptions import PermissionDenied

        raise PermissionDenied("no longer served")
    return EmailResponse(subject=f"[#{ticket.pk}] {request.subject}", body="ok\n")


def other(request):
    Ticket.objects.create(subject=f"other: {request.subject}")
    return EmailResponse(subject=f"Other: {request.subject}", body="ok\n")


mailpatterns = [
    mailbox(r"^desk@example\.com$", desk, name="desk"),
    mailbox(r"^other@example\.com$", other, name="other"),
]

MESSAGE = (
    b"From: Ann <ann@example.org>\n"
    b"To: desk@example.com\n"
    b"Subject: Printer on fire\n"
    b"Message-ID: <replay1@example.org>\n"
    b"\n"
    b"Help!\n"
)


@pytest.fixture(autouse=True)
def mailconf(settings):
    settings.ROOT_MAILCONF = __name__
    settings.REPLAY_TEST_VIEW = "ok"


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """
    Runs what the commit of a replay's transaction runs (sending its
    replies): inside the test's transaction nothing commits.
    """

    def run(function, *args):
        with django_capture_on_commit_callbacks(execute=True):
            return function(*args)

    return run


def replies():
    """The replies sent (ADMINS are mailed a view's bug too)."""
    return [m for m in mail.outbox if m.subject.startswith("[#")]


def send(message=MESSAGE, recipient="desk@example.com"):
    return Client(raise_request_exception=False).send(
        message, recipient=recipient, sender="ann@example.org", queue_id="Q1"
    )


def test_a_message_deferred_by_a_bug_is_handled_when_replayed_after_the_fix(settings, committed):
    settings.REPLAY_TEST_VIEW = "bug"
    assert send().outcome is Outcome.TEMPORARY_FAILURE
    inbound = InboundMessage.objects.get()
    assert inbound.status == "deferred" and not Ticket.objects.exists()

    settings.REPLAY_TEST_VIEW = "ok"
    replayed = committed(replay, inbound)
    assert replayed.result.outcome is Outcome.DELIVERED
    assert (replayed.inbound, replayed.reran) == (inbound, False)
    inbound.refresh_from_db()
    assert (inbound.status, inbound.outcome, inbound.route, inbound.attempts) == (
        "processed",
        "delivered",
        "desk",
        2,
    )
    assert Ticket.objects.count() == 1 and len(replies()) == 1
    attempts = list(inbound.history.values_list("transport", "queue_id", "outcome", "replayed"))
    assert attempts == [
        ("test", "Q1", "temporary_failure", False),
        ("replay", "", "delivered", False),
    ]
    # The MTA's own redelivery is still answered from the record.
    assert send().outcome is Outcome.DELIVERED and Ticket.objects.count() == 1


def test_a_finished_message_runs_its_view_again_only_when_replayed(committed):
    send()
    inbound = InboundMessage.objects.get()
    send()  # a redelivery: from the record
    assert Ticket.objects.count() == 1
    replayed = committed(replay, inbound)
    assert replayed.reran and replayed.result.outcome is Outcome.DELIVERED
    assert Ticket.objects.count() == 2 and len(replies()) == 2
    assert replayed.result.reply_sent
    inbound.refresh_from_db()
    assert inbound.attempts == 2
    assert OutboundMessage.objects.filter(inbound=inbound).count() == 2
    # The first run left no attempt (its row told it): the replay wrote it
    # from the record before its own run replaced the record.
    history = list(inbound.history.values_list("transport", "outcome", "replayed"))
    assert history == [
        ("test", "delivered", False),
        ("test", "delivered", True),
        ("replay", "delivered", False),
    ]
    # The request ended with the replay: the next delivery is answered from the record.
    send()
    assert Ticket.objects.count() == 2


def test_a_replay_that_fails_temporarily_leaves_the_record_of_the_finished_run(settings):
    send()
    inbound = InboundMessage.objects.get()
    settings.REPLAY_TEST_VIEW = "bug"
    replayed = replay(inbound)
    assert replayed.result.outcome is Outcome.TEMPORARY_FAILURE
    inbound.refresh_from_db()
    assert (inbound.status, inbound.outcome, inbound.attempts) == ("processed", "delivered", 2)
    assert "a bug in the view" in inbound.last_error
    first, last = inbound.history.all()
    assert (first.transport, first.outcome, first.replayed) == ("test", "delivered", False)
    assert (last.transport, last.outcome) == ("replay", "temporary_failure")
    assert "RuntimeError: a bug in the view" in last.error
    assert Ticket.objects.count() == 1  # the replay's ticket was rolled back


def test_a_replay_that_ends_in_a_final_outcome_replaces_the_record(settings):
    send()
    inbound = InboundMessage.objects.get()
    settings.REPLAY_TEST_VIEW = "refuse"
    assert replay(inbound).result.outcome is Outcome.PERMISSION_DENIED
    inbound.refresh_from_db()
    assert (inbound.status, inbound.outcome, inbound.status_text) == (
        "bounced",
        "permission_denied",
        "no longer served",
    )
    assert [(a.outcome, a.replayed) for a in inbound.attempt_history()] == [
        ("delivered", False),
        ("permission_denied", False),
    ]


def test_a_reroute_dispatches_the_stored_message_to_another_address():
    send()
    inbound = InboundMessage.objects.get()
    replayed = replay(inbound, "other@example.com")
    assert replayed.result.outcome is Outcome.DELIVERED and not replayed.reran
    rerouted = replayed.inbound
    assert rerouted != inbound
    assert (rerouted.recipient, rerouted.original_recipient, rerouted.transport) == (
        "other@example.com",
        "desk@example.com",
        "reroute",
    )
    assert (rerouted.route, rerouted.raw_name) == ("other", inbound.raw_name)
    assert Ticket.objects.filter(subject="other: Printer on fire").count() == 1
    # Rerouted again: a deliberate run for that address too.
    again = replay(inbound, "other@example.com")
    assert again.reran and again.inbound == rerouted
    assert Ticket.objects.filter(subject="other: Printer on fire").count() == 2


def test_a_reroute_to_an_unknown_address_bounces_and_is_recorded():
    send()
    replayed = replay(InboundMessage.objects.get(), "nobody@example.com")
    assert replayed.result.outcome is Outcome.UNKNOWN_RECIPIENT
    assert replayed.inbound.status == "bounced"


def test_a_replay_of_a_message_whose_file_is_gone_says_so(store, settings):
    settings.MAIL_STORE_ROW_LIMIT = 0  # to a file, however small
    send()
    inbound = InboundMessage.objects.get()
    os.unlink(store / inbound.raw_name)
    with pytest.raises(FileNotFoundError):
        replay(inbound)


def test_incinerate_deletes_the_message_its_history_replies_and_file(store, settings):
    settings.MAIL_STORE_ROW_LIMIT = 0  # to a file, however small
    send()
    inbound = InboundMessage.objects.get()
    path = store / inbound.raw_name
    purged = incinerate([inbound])
    assert (purged.messages, purged.files) == (1, [inbound.raw_name])
    assert not path.exists()
    assert not (
        InboundMessage.objects.exists()
        or InboundAttempt.objects.exists()
        or OutboundMessage.objects.exists()
    )


def test_incinerate_keeps_a_file_another_message_shares_until_the_last_goes(store, settings):
    settings.MAIL_STORE_ROW_LIMIT = 0  # to a file, however small
    send()
    send(recipient="other@example.com")
    first, second = InboundMessage.objects.order_by("pk")
    assert first.raw_name == second.raw_name
    assert incinerate([first]).files == []
    assert (store / first.raw_name).exists()
    assert incinerate([second]).files == [second.raw_name]
    assert not (store / first.raw_name).exists()


def test_incinerate_keeps_a_file_a_delivery_has_touched_since(store, settings):
    settings.MAIL_STORE_ROW_LIMIT = 0  # to a file, however small
    send()
    inbound = InboundMessage.objects.get()
    path = store / inbound.raw_name
    later = timezone.now().timestamp() + 5
    os.utime(path, (later, later))  # the same bytes arriving again, its row not committed
    assert incinerate([inbound]).files == []
    assert path.exists() and not InboundMessage.objects.exists()


def test_a_small_message_is_kept_in_its_row_and_incinerated_with_it(store):
    send()
    send(recipient="other@example.com")
    first, second = InboundMessage.objects.order_by("pk")
    assert bytes(first.raw) == bytes(second.raw) == MESSAGE
    assert first.raw_name == second.raw_name  # the same bytes, as a file's name says
    assert not (store / first.raw_name).exists()
    assert first.open_raw().read() == MESSAGE
    # A replay reads it from the row.
    assert replay(first).reran and Ticket.objects.count() == 3
    purged = incinerate([first, second])
    assert (purged.messages, purged.files) == (2, [])
    assert not InboundMessage.objects.exists()


def test_resend_sends_a_failed_reply_now(settings):
    use_backend(settings, "tests.store.backends.DownBackend")
    send()
    reply = OutboundMessage.objects.get()
    OutboundMessage.objects.filter(pk=reply.pk).update(status="failed")
    assert outbox.resend([reply.pk]) == {"sent": 0, "retry": 1, "failed": 0}
    reply.refresh_from_db()
    assert (reply.status, reply.attempts) == ("pending", 2)
    assert "outgoing mail server is down" in reply.last_error

    use_backend(settings, "django.core.mail.backends.locmem.EmailBackend")
    assert outbox.resend([reply.pk]) == {"sent": 1, "retry": 0, "failed": 0}
    reply.refresh_from_db()
    assert reply.status == "sent" and len(mail.outbox) == 1
    # A sent reply is not sent again.
    assert outbox.resend([reply.pk]) == {"sent": 0, "retry": 0, "failed": 0}
