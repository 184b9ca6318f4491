"""purgemail: finished messages past the retention go, with their files; nothing else."""

import os
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from mailserver.store.models import InboundMessage, OutboundMessage
from mailserver.store.retention import purge
from mailserver.test import Client
from tests.mail import use_backend

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def files_only(settings):
    """Every message to a file, however small: files are what these tests are about."""
    settings.MAIL_STORE_ROW_LIMIT = 0


MESSAGE = b"From: ann@example.org\nSubject: Old\nMessage-ID: <r%d@example.org>\n\nbody %d\n"


def age(path, days):
    then = time.time() - days * 86400
    os.utime(path, (then, then))


def deliver(n, recipient="quiet@desk.example.com", days_ago=31, status=None):
    """A message handled ``days_ago``: its row and its file as old as that."""
    from django.conf import settings

    Client().send(MESSAGE % (n, n), recipient=recipient, sender="ann@example.org")
    inbound = InboundMessage.objects.latest("pk")
    when = timezone.now() - timedelta(days=days_ago)
    InboundMessage.objects.filter(pk=inbound.pk).update(
        finished_at=when, received_at=when, **({"status": status} if status else {})
    )
    age(os.path.join(settings.MAIL_STORE_ROOT, inbound.raw_name), days_ago)
    return inbound


def test_old_finished_messages_go_with_their_files_and_history(store):
    old = deliver(1)
    bounced = deliver(2, recipient="nobody@example.com")
    recent = deliver(3, days_ago=29)
    files = [store / m.raw_name for m in (old, bounced, recent)]
    purged = purge()
    assert purged.messages == 2
    assert sorted(purged.files) == sorted([old.raw_name, bounced.raw_name])
    assert list(InboundMessage.objects.all()) == [recent]
    assert [f.exists() for f in files] == [False, False, True]
    assert not recent.history.model.objects.exclude(message=recent).exists()


@pytest.mark.parametrize("status", ["received", "processing", "deferred"])
def test_an_unfinished_message_is_never_purged(status):
    deliver(1, status=status)
    assert purge().messages == 0
    assert InboundMessage.objects.count() == 1


def test_a_message_with_a_reply_still_to_send_is_kept(settings, store):
    use_backend(settings, "tests.store.backends.DownBackend")
    inbound = deliver(1, recipient="help@desk.example.com")
    assert OutboundMessage.objects.get().status == "pending"
    assert purge().messages == 0
    OutboundMessage.objects.update(status="failed")
    assert purge().messages == 1
    assert not OutboundMessage.objects.exists()
    assert not (store / inbound.raw_name).exists()


def test_a_file_shared_with_a_kept_message_stays(store):
    old = deliver(1)
    Client().send(MESSAGE % (1, 1), recipient="record@example.com")
    age(store / old.raw_name, 31)
    assert purge().messages == 1
    assert (store / old.raw_name).exists()


def test_a_file_a_delivery_has_just_reused_stays(store):
    """Its row may not be committed yet: the touch protects the file."""
    old = deliver(1)
    (store / old.raw_name).touch()
    assert purge().messages == 1
    assert (store / old.raw_name).exists()
    age(store / old.raw_name, 2)
    assert purge().files == [old.raw_name]


def test_orphaned_files_go_once_past_the_grace_period(store):
    kept = deliver(1, days_ago=1)
    directory = store / "inbound" / "ab" / "cd"
    directory.mkdir(parents=True)
    orphan, young, torn = directory / "abcd.eml", directory / "abce.eml", directory / ".tmp-x.eml"
    for path in (orphan, young, torn):
        path.write_bytes(b"x")
    age(orphan, 2)
    age(torn, 2)
    purged = purge()
    assert sorted(purged.files) == ["inbound/ab/cd/.tmp-x.eml", "inbound/ab/cd/abcd.eml"]
    assert [p.exists() for p in (orphan, young, torn)] == [False, True, False]
    assert (store / kept.raw_name).exists()


def test_retention_is_a_setting(settings):
    deliver(1, days_ago=8)
    settings.MAIL_STORE_RETENTION = timedelta(days=10)
    assert purge().messages == 0
    settings.MAIL_STORE_RETENTION = 7 * 86400
    assert purge().messages == 1


def test_purgemail_command_and_its_dry_run(store, capsys):
    old = deliver(1)
    call_command("purgemail", "--dry-run")
    assert capsys.readouterr().out == "Would delete 1 message(s) and 1 raw file(s).\n"
    assert InboundMessage.objects.exists() and (store / old.raw_name).exists()
    call_command("purgemail", verbosity=2)
    assert capsys.readouterr().out == (
        f"raw file {old.raw_name}\nDeleted 1 message(s) and 1 raw file(s).\n"
    )
    assert not InboundMessage.objects.exists()
