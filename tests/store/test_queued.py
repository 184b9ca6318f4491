"""
Queued processing, in process: the transport's answer, the checks that
need no view, the worker's claim and lease, retries with backoff, giving
up, and the sweep. The tasks go to the dummy backend of the Tasks
framework, and a test runs them as a worker would (the real worker on a
real database is in test_queued_processes.py).
"""

from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from mailserver import Outcome
from mailserver.store import queue
from mailserver.store.handler import RecordedResult
from mailserver.store.models import InboundMessage, OutboundMessage
from mailserver.test import Client
from tests.mail import use_backend
from tests.mailapp.models import Ticket

from .taskbackends import backend_path

pytestmark = pytest.mark.django_db

HELP = "help@desk.example.com"

MESSAGE = (
    b"From: Ann <ann@example.org>\n"
    b"To: help@desk.example.com\n"
    b"Subject: Printer on fire\n"
    b"Message-ID: <q1@example.org>\n"
    b"\n"
    b"Help!\n"
)


@pytest.fixture
def tasks(settings):
    """Queued processing, its tasks kept by the dummy backend for the test to run."""
    settings.TASKS = {"default": {"BACKEND": backend_path("DummyBackend")}}
    settings.MAIL_STORE_PROCESSING = "queued"
    from mailserver.store.tasks import configured, process_message

    backend = configured(process_message).get_backend()
    backend.clear()
    return backend.results


def nested(depth):
    raw = b"Content-Type: text/plain\n\ninnermost\n"
    for i in range(depth):
        raw = (
            f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n'.encode()
            + raw
            + f"\n--b{i}--\n".encode()
        )
    return b"Subject: deep\nMessage-ID: <deep@example.org>\n" + raw


def send(message=MESSAGE, recipient="help@desk.example.com", **envelope):
    envelope.setdefault("sender", "ann@example.org")
    return Client().send(message, recipient=recipient, **envelope)


@contextmanager
def in_the_tests_transaction(django_capture_on_commit_callbacks):
    """
    As the test Client does: the connection is the test's, in its
    transaction, so the signals a message starts and ends with do not close
    it; what its commit would run, runs.
    """
    from mailserver.test.client import keep_connections

    with keep_connections(), django_capture_on_commit_callbacks(execute=True):
        yield


def work(results, django_capture_on_commit_callbacks):
    """
    Run the tasks that are due, in order, as a worker would, until none is
    left; those to run later stay. Returns what each returned.
    """
    done = []
    while due := [r for r in results if not r.task.run_after or r.task.run_after <= timezone.now()]:
        results.remove(due[0])
        with in_the_tests_transaction(django_capture_on_commit_callbacks):
            done.append(due[0].task.call(*due[0].args, **due[0].kwargs))
    return done


def run(pk, django_capture_on_commit_callbacks):
    with in_the_tests_transaction(django_capture_on_commit_callbacks):
        return queue.run(pk)


def test_the_mta_gets_250_and_the_view_runs_in_the_worker(
    tasks, django_capture_on_commit_callbacks
):
    result = send(queue_id="4QX1")
    assert (result.outcome, result.exit_code, result.reply()) == (
        Outcome.QUEUED,
        0,
        "250 2.0.0 queued for processing",
    )
    assert result.route == "open-ticket"
    assert not Ticket.objects.exists() and not mail.outbox
    inbound = InboundMessage.objects.get()
    assert (inbound.status, inbound.attempts, inbound.outcome) == ("received", 0, "")
    [task] = tasks
    assert (task.task.name, task.args, task.task.queue_name) == (
        "process_message",
        [inbound.pk],
        "default",
    )

    assert work(tasks, django_capture_on_commit_callbacks) == ["processed"]
    assert Ticket.objects.count() == 1
    [reply] = mail.outbox
    assert reply.to == ["ann@example.org"]
    inbound.refresh_from_db()
    assert (inbound.status, inbound.outcome, inbound.attempts) == ("processed", "delivered", 1)
    assert (inbound.lease_owner, inbound.lease_expires_at) == ("", None)
    assert list(inbound.history.values_list("outcome", "queue_id", "replayed")) == [
        ("queued", "4QX1", False),
        ("delivered", "4QX1", False),
    ]
    # A task run again finds the message finished.
    assert run(inbound.pk, django_capture_on_commit_callbacks) == "skipped"
    assert Ticket.objects.count() == 1 and len(mail.outbox) == 1


def test_the_worker_uses_the_mailconf_the_transport_dispatched_with(
    tasks, settings, django_capture_on_commit_callbacks
):
    settings.ROOT_MAILCONF = "tests.mailapp.mailconf"  # has no help desk
    client = Client(mailconf="tests.store.mailconf")
    assert client.send(MESSAGE, recipient=HELP, sender="ann@example.org").outcome is Outcome.QUEUED
    [task] = tasks
    assert task.args == [InboundMessage.objects.get().pk, "tests.store.mailconf"]
    assert work(tasks, django_capture_on_commit_callbacks) == ["processed"]
    assert Ticket.objects.count() == 1


def test_the_worker_sees_the_envelope_the_transport_gave(tasks, django_capture_on_commit_callbacks):
    from tests.mailapp.models import Delivery

    send(
        recipient="record+tag@example.com",
        queue_id="4QX2",
        client_address="192.0.2.7",
        original_recipient="alias@example.com",
    )
    work(tasks, django_capture_on_commit_callbacks)
    delivery = Delivery.objects.get()
    assert (
        delivery.sender,
        delivery.recipient,
        delivery.subaddress,
        delivery.original_recipient,
        delivery.queue_id,
        delivery.client_address,
    ) == (
        "ann@example.org",
        "record+tag@example.com",
        "tag",
        "alias@example.com",
        "4QX2",
        "192.0.2.7",
    )


@pytest.mark.parametrize(
    ("message", "recipient", "sender", "outcome"),
    [
        (MESSAGE, "nobody@example.com", "ann@example.org", Outcome.UNKNOWN_RECIPIENT),
        (MESSAGE, "help@desk.example.com", "ann@@example.org", Outcome.BAD_SENDER),
        (b"\n\n", "help@desk.example.com", "ann@example.org", Outcome.MALFORMED),
        (nested(30), "help@desk.example.com", "ann@example.org", Outcome.MALFORMED),
    ],
    ids=["unknown-recipient", "bad-sender", "blank", "too-deep"],
)
def test_what_needs_no_view_is_refused_at_once(tasks, message, recipient, sender, outcome):
    result = send(message, recipient=recipient, sender=sender)
    assert result.outcome is outcome
    assert result.exit_code != 0
    assert not tasks
    inbound = InboundMessage.objects.get()
    assert (inbound.status, inbound.outcome, inbound.attempts) == (
        "bounced",
        outcome.name.lower(),
        1,
    )
    # Redelivered, it is bounced again from the record.
    again = send(message, recipient=recipient, sender=sender)
    assert isinstance(again, RecordedResult) and again.outcome is outcome
    assert not tasks


def test_a_bad_reply_address_signature_is_refused_at_once(
    tasks, django_capture_on_commit_callbacks
):
    from mailserver.resolvers import reverse

    mailconf = "tests.server.mailconf"  # signed-<n>@example.com is a signed route
    client = Client(mailconf=mailconf, sender="ann@example.org")

    def signed(n, bind):
        return reverse("signed", kwargs={"n": n}, mailconf=mailconf, sign=True, bind=bind)

    for address, line in [
        ("signed-7@example.com", "5.7.1 <signed-7@example.com>: reply address not signed"),
        (
            signed(8, "bob@example.org"),
            "5.7.1 <signed-8@example.com>: reply address issued to another sender",
        ),
    ]:
        result = client.send(MESSAGE, recipient=address)
        assert (result.outcome, result.dsn_line()) == (Outcome.PERMISSION_DENIED, line)
    assert not tasks
    assert client.send(MESSAGE, recipient=signed(7, "ann@example.org")).outcome is Outcome.QUEUED
    assert work(tasks, django_capture_on_commit_callbacks) == ["processed"]


def test_a_refusal_at_once_sends_a_notice_only_under_the_rules(tasks, settings):
    settings.MAIL_FAILURE_NOTICES = True
    send(recipient="nobody@example.com")
    [notice] = OutboundMessage.objects.all()
    assert (notice.kind, notice.recipients) == ("notice", ["ann@example.org"])
    send(recipient="nobody@example.com", sender="mailer-daemon@example.org")
    assert OutboundMessage.objects.count() == 1


def test_a_too_big_message_is_refused_at_once(tasks, settings):
    settings.MAIL_MAX_MESSAGE_SIZE = 100
    result = send(MESSAGE + b"x" * 200)
    assert result.outcome is Outcome.TOO_BIG and not tasks


def test_a_broken_mailconf_defers_at_once(tasks, settings):
    settings.ROOT_MAILCONF = "tests.store.no_such_module"
    client = Client(raise_request_exception=False)
    result = client.send(MESSAGE, recipient="help@desk.example.com", sender="ann@example.org")
    assert result.outcome.is_temporary and not tasks
    assert InboundMessage.objects.get().status == "deferred"


def test_a_redelivery_is_queued_once_and_answered_from_the_record_once_done(
    tasks, django_capture_on_commit_callbacks
):
    send()
    inbound = InboundMessage.objects.get()
    # Claimed by a worker: a redelivery gets 250 and enqueues nothing.
    assert queue.claim(inbound.pk, "worker-1") is not None
    tasks.clear()
    assert send().outcome is Outcome.QUEUED
    assert not tasks
    # Its lease expired (the worker died): the redelivery hands it over again.
    InboundMessage.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert send().outcome is Outcome.QUEUED
    assert len(tasks) == 1
    assert work(tasks, django_capture_on_commit_callbacks) == ["processed"]
    again = send()
    assert isinstance(again, RecordedResult) and again.outcome is Outcome.DELIVERED
    assert Ticket.objects.count() == 1 and InboundMessage.objects.count() == 1


def test_a_temporary_failure_is_retried_with_backoff(
    tasks, settings, django_capture_on_commit_callbacks
):
    settings.MAIL_STORE_RETRY_DELAY = 300
    send(recipient="flaky@desk.example.com")
    before = timezone.now()
    assert work(tasks, django_capture_on_commit_callbacks) == ["deferred"]
    assert not Ticket.objects.exists()
    inbound = InboundMessage.objects.get()
    assert (inbound.status, inbound.outcome, inbound.attempts) == (
        "deferred",
        "temporary_failure",
        1,
    )
    assert "RuntimeError: the view fails on its first run" in inbound.last_error
    assert before + timedelta(seconds=300) <= inbound.next_attempt_at
    assert inbound.next_attempt_at <= timezone.now() + timedelta(seconds=300)
    # The retry is enqueued to run then; run early, it is not due.
    [retry] = tasks
    assert retry.task.run_after == inbound.next_attempt_at
    assert run(inbound.pk, django_capture_on_commit_callbacks) == "skipped"
    # Its time come, the retry runs the view afresh.
    InboundMessage.objects.update(next_attempt_at=timezone.now())
    assert run(inbound.pk, django_capture_on_commit_callbacks) == "processed"
    assert Ticket.objects.count() == 1
    inbound.refresh_from_db()
    assert (inbound.status, inbound.attempts, inbound.next_attempt_at) == (
        "processed",
        2,
        inbound.next_attempt_at,
    )


def test_the_backoff_doubles_up_to_the_maximum(settings):
    settings.MAIL_STORE_RETRY_DELAY = 300
    settings.MAIL_STORE_MAX_RETRY_DELAY = 4000
    delays = [queue.retry_delay(n).total_seconds() for n in range(1, 7)]
    assert delays == [300, 600, 1200, 2400, 4000, 4000]
    settings.MAIL_STORE_RETRY_DELAY = timedelta(minutes=1)
    assert queue.retry_delay(2) == timedelta(minutes=2)


def test_past_the_maximum_age_the_message_fails_and_admins_are_told(
    tasks, settings, django_capture_on_commit_callbacks
):
    settings.MAIL_STORE_MAX_AGE = timedelta(days=5)
    send(recipient="defer@example.com")
    InboundMessage.objects.update(received_at=timezone.now() - timedelta(days=5, seconds=1))
    assert work(tasks, django_capture_on_commit_callbacks) == ["failed"]
    inbound = InboundMessage.objects.get()
    assert (inbound.status, inbound.outcome, inbound.status_text) == (
        "failed",
        "temporary_failure",
        "database busy",
    )
    assert inbound.finished_at is not None and inbound.next_attempt_at is None
    assert not tasks
    [report] = mail.outbox
    assert report.to == ["admin@example.com"]
    assert "defer@example.com" in report.subject and "database busy" in report.subject


def test_a_permanent_failure_in_the_worker_is_recorded_without_a_notice_by_default(
    tasks, django_capture_on_commit_callbacks
):
    assert send(recipient="refuse@example.com").outcome is Outcome.QUEUED
    assert work(tasks, django_capture_on_commit_callbacks) == ["bounced"]
    inbound = InboundMessage.objects.get()
    assert (inbound.outcome, inbound.status_text) == ("rejected", "no attachments here")
    assert not OutboundMessage.objects.exists() and not mail.outbox


@pytest.mark.parametrize(
    ("sender", "notices"),
    [("ann@example.org", 1), ("mailer-daemon@example.org", 0), ("", 0)],
)
def test_a_permanent_failure_in_the_worker_sends_a_notice_under_the_rules(
    tasks, settings, django_capture_on_commit_callbacks, sender, notices
):
    settings.MAIL_FAILURE_NOTICES = True
    send(recipient="refuse@example.com", sender=sender)
    work(tasks, django_capture_on_commit_callbacks)
    assert OutboundMessage.objects.filter(kind="notice").count() == notices
    assert len(mail.outbox) == notices


def test_a_lease_keeps_other_workers_out_until_it_expires(tasks, settings):
    settings.MAIL_STORE_LEASE = 60
    send()
    pk = InboundMessage.objects.get().pk
    held = queue.claim(pk, "worker-1")
    assert (held.status, held.lease_owner) == ("processing", "worker-1")
    assert timedelta(seconds=59) < held.lease_expires_at - timezone.now() <= timedelta(seconds=60)
    assert queue.claim(pk, "worker-2") is None
    InboundMessage.objects.update(lease_expires_at=timezone.now())
    assert queue.claim(pk, "worker-2").lease_owner == "worker-2"


def make(status="received", age=0, **fields):
    """A stored message in a given state, ``age`` seconds old."""
    n = InboundMessage.objects.count()
    return InboundMessage.objects.create(
        idempotency_key=f"{n:064d}",
        recipient=f"m{n}@example.com",
        raw_name=f"inbound/{n}.eml",
        status=status,
        received_at=timezone.now() - timedelta(seconds=age),
        **fields,
    )


def test_the_sweep_hands_lost_messages_to_the_workers(tasks, settings):
    settings.MAIL_STORE_LEASE = 600
    settings.MAIL_STORE_MAX_AGE = timedelta(days=5)
    now = timezone.now()
    dead_worker = make("processing", 700, lease_owner="w", lease_expires_at=now)
    working = make("processing", 700, lease_owner="w", lease_expires_at=now + timedelta(60))
    lost_task = make("received", 601)
    just_queued = make("received", 10)
    retry_later = make("deferred", 700, next_attempt_at=now + timedelta(seconds=60))
    retry_lost = make("deferred", 7000, next_attempt_at=now - timedelta(seconds=601))
    retry_due = make("deferred", 700, next_attempt_at=now - timedelta(seconds=1))
    finished = make("processed", 7000)
    too_old = make("deferred", 5 * 86400 + 1, next_attempt_at=now - timedelta(seconds=601))

    counts = queue.sweep()

    assert counts == {"requeued": 3, "failed": 1}
    requeued = {dead_worker.pk, lost_task.pk, retry_lost.pk}
    assert sorted(t.args[0] for t in tasks) == sorted(requeued)
    for inbound in InboundMessage.objects.filter(pk__in=requeued):
        assert (inbound.status, inbound.lease_owner, inbound.lease_expires_at) == (
            "received",
            "",
            None,
        )
    untouched = [working, just_queued, retry_later, retry_due, finished]
    for before in untouched:
        after = InboundMessage.objects.get(pk=before.pk)
        assert (after.status, after.lease_owner, after.next_attempt_at) == (
            before.status,
            before.lease_owner,
            before.next_attempt_at,
        )
    too_old.refresh_from_db()
    assert (too_old.status, too_old.outcome) == ("failed", "temporary_failure")
    [report] = mail.outbox
    assert report.to == ["admin@example.com"] and too_old.recipient in report.subject
    # Handed over once: the next sweep leaves them to their tasks.
    tasks.clear()
    assert queue.sweep() == {"requeued": 0, "failed": 0}


def test_where_the_backend_cannot_defer_the_sweep_enqueues_due_retries(
    tasks, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = {"default": {"BACKEND": "tests.store.taskbackends.UndeferringBackend"}}
    from mailserver.store.tasks import configured, process_message

    results = configured(process_message).get_backend().results
    send(recipient="flaky@desk.example.com")
    assert work(results, django_capture_on_commit_callbacks) == ["deferred"]
    assert not results  # no task can wait for the retry: the sweep's to enqueue
    assert queue.sweep() == {"requeued": 0, "failed": 0}
    InboundMessage.objects.update(next_attempt_at=timezone.now())
    assert queue.sweep() == {"requeued": 1, "failed": 0}
    assert work(results, django_capture_on_commit_callbacks) == ["processed"]


def test_retrymail_sweeps_and_enqueues_the_sending_of_due_replies(tasks, settings):
    from io import StringIO

    use_backend(settings, "tests.store.backends.DownBackend")
    make("received", 3600)
    OutboundMessage.objects.create(raw=b"Subject: x\n\nx\n", recipients=["a@example.org"])
    out = StringIO()
    call_command("retrymail", stdout=out)
    assert out.getvalue() == "Requeued 1, given up 0, reply sending queued 1.\n"
    assert sorted(t.task.name for t in tasks) == ["process_message", "send_replies"]


def test_retrymail_says_nothing_when_there_was_nothing_to_do(tasks):
    from io import StringIO

    out = StringIO()
    call_command("retrymail", stdout=out)
    assert out.getvalue() == ""
    call_command("retrymail", stdout=out, verbosity=2)
    assert out.getvalue() == "Requeued 0, given up 0, reply sending queued 0.\n"


def test_retrymail_is_for_queued_processing(settings):
    settings.MAIL_STORE_PROCESSING = "inline"
    with pytest.raises(CommandError, match="not 'queued'"):
        call_command("retrymail")


def test_the_periodic_tasks_do_what_their_commands_do(tasks, settings):
    from mailserver.store import tasks as store_tasks

    OutboundMessage.objects.create(raw=b"Subject: x\n\nx\n", recipients=["a@example.org"])
    assert store_tasks.send_replies.call() == {"sent": 1, "retry": 0, "failed": 0}
    assert len(mail.outbox) == 1
    make("processed", 40 * 86400, finished_at=timezone.now() - timedelta(days=31))
    assert store_tasks.purge_mail.call() == {"messages": 1, "files": 0}
    assert not InboundMessage.objects.exists()
    assert store_tasks.sweep.call() == {"requeued": 0, "failed": 0}


def test_with_the_immediate_backend_the_view_runs_before_the_answer(
    settings, django_capture_on_commit_callbacks
):
    settings.TASKS = {"default": {"BACKEND": backend_path("ImmediateBackend")}}
    settings.MAIL_STORE_PROCESSING = "queued"
    with django_capture_on_commit_callbacks(execute=True):
        result = send()
    assert result.outcome is Outcome.QUEUED
    assert InboundMessage.objects.get().status == "processed"
    assert Ticket.objects.count() == 1 and len(mail.outbox) == 1


def test_inline_processing_is_the_default(settings):
    assert send().outcome is Outcome.DELIVERED
    assert InboundMessage.objects.get().status == "processed"


@pytest.mark.parametrize(
    ("overrides", "ids"),
    [
        ({"MAIL_STORE_PROCESSING": "later"}, ["mailserver_store.E002"]),
        ({"MAIL_STORE_PROCESSING": "inline", "MAIL_STORE_TASK_BACKEND": "nowhere"}, []),
        ({"MAIL_STORE_TASK_BACKEND": "nowhere"}, ["mailserver_store.E004"]),
        ({"MAIL_STORE_TASK_QUEUE": "mail"}, ["mailserver_store.E004"]),
        ({}, ["mailserver_store.W002"]),
    ],
)
def test_system_checks(tasks, settings, overrides, ids):
    from django.core.checks import run_checks

    for name, value in overrides.items():
        setattr(settings, name, value)
    found = [e.id for e in run_checks() if (e.id or "").startswith("mailserver_store")]
    assert found == ids


def test_a_backend_with_workers_passes_the_checks(tasks, settings):
    from django.core.checks import run_checks

    # Its app installed, as its documentation says: django-tasks-db 0.12
    # (the last for Django 4.2) loads its models with the backend.
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "django_tasks_db"]
    settings.TASKS = {
        "default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["mail"]},
    }
    settings.MAIL_STORE_TASK_QUEUE = "mail"
    assert [e.id for e in run_checks() if (e.id or "").startswith("mailserver_store")] == []
