"""Raw messages on disk: durable before the row, shared by content, private."""

import hashlib
import io
import os
import stat

import pytest

from mailserver import Outcome
from mailserver.store.models import InboundMessage
from mailserver.store.storage import MessageStorage, get_storage, raw_name, save_raw
from mailserver.test import Client


@pytest.fixture(autouse=True)
def files_only(settings):
    """Every message to a file, however small: files are what these tests are about."""
    settings.MAIL_STORE_ROW_LIMIT = 0


MESSAGE = b"From: ann@example.org\nSubject: Printer\nMessage-ID: <s1@example.org>\n\nFire.\n"


def test_saved_under_the_digest_of_its_bytes(store):
    digest = hashlib.sha256(MESSAGE).hexdigest()
    name = save_raw(MESSAGE, digest)
    assert name == raw_name(digest) == f"inbound/{digest[:2]}/{digest}.eml"
    path = store / name
    assert path.read_bytes() == MESSAGE
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o750


def test_saving_the_same_bytes_again_keeps_one_file_and_touches_it(store):
    digest = hashlib.sha256(MESSAGE).hexdigest()
    path = store / save_raw(MESSAGE, digest)
    os.utime(path, (1_000_000, 1_000_000))
    assert save_raw(io.BytesIO(MESSAGE), digest) == raw_name(digest)
    assert path.stat().st_mtime > 1_000_000
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_file_and_new_directories_are_fsynced_before_the_save_returns(store, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    digest = hashlib.sha256(MESSAGE).hexdigest()
    path = store / save_raw(MESSAGE, digest)
    # The data first (written to a temporary name), then each directory
    # whose entries changed: those created, and the file's after the rename.
    assert synced[-1] == str(path.parent)
    assert str(store / "inbound") in synced and str(path.parent.parent) in synced
    [data] = [p for p in synced if os.path.basename(p).startswith(".tmp-")]
    assert synced.index(data) < synced.index(str(path.parent))
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]


def test_the_spread_directories_come_at_once_then_a_save_syncs_two_things(store, monkeypatch):
    save_raw(MESSAGE, hashlib.sha256(MESSAGE).hexdigest())
    spread = sorted((store / "inbound").iterdir())
    assert [p.name for p in spread] == [f"{n:02x}" for n in range(256)]
    assert {stat.S_IMODE(p.stat().st_mode) for p in spread} == {0o750}
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    other = MESSAGE + b"Still burning.\n"
    path = store / save_raw(other, hashlib.sha256(other).hexdigest())
    # No directory to make: the file's data, then its directory entry.
    assert len(synced) == 2 and os.path.basename(synced[0]).startswith(".tmp-")
    assert synced[1] == str(path.parent)


def test_recipients_of_one_message_share_its_file(db, store):
    Client().send(MESSAGE, recipient="quiet@desk.example.com")
    Client().send(MESSAGE, recipient="record@example.com")
    first, second = InboundMessage.objects.order_by("pk")
    assert first.raw_name == second.raw_name
    assert first.open_raw().read() == MESSAGE
    assert len(list((store / first.raw_name).parent.iterdir())) == 1


def test_a_large_message_from_a_spool_file(transactional_db, store):
    import tempfile

    from mailserver.envelope import Envelope
    from mailserver.handlers import dispatch

    message = b"Subject: big\nMessage-ID: <big@example.org>\n\n" + b"".join(
        b"%08d line of a large message\n" % i for i in range(400_000)
    )
    spool = tempfile.SpooledTemporaryFile(max_size=1 << 20)
    spool.write(message)
    result = dispatch(spool, Envelope(recipient="quiet@desk.example.com", transport="test"))
    assert result.outcome is Outcome.IGNORED
    inbound = InboundMessage.objects.get()
    assert inbound.size == len(message)
    with inbound.open_raw() as stored:
        assert stored.read() == message


def test_a_storages_alias_of_the_project_wins(db, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "mailserver": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    settings.MAIL_STORE_ROOT = None
    storage = get_storage()
    assert not isinstance(storage, MessageStorage)
    Client().send(MESSAGE, recipient="quiet@desk.example.com")
    inbound = InboundMessage.objects.get()
    assert storage.open(inbound.raw_name).read() == MESSAGE
    Client().send(MESSAGE, recipient="record@example.com")
    assert InboundMessage.objects.count() == 2


def test_nowhere_to_store_defers_as_misconfigured_and_check_says_so(db, settings):
    from django.core.checks import run_checks

    settings.MAIL_STORE_ROOT = None
    result = Client().send(MESSAGE, recipient="quiet@desk.example.com")
    assert result.outcome is Outcome.MISCONFIGURED
    assert "MAIL_STORE_ROOT" in result.dsn_line()
    assert not InboundMessage.objects.exists()
    assert [e.id for e in run_checks() if e.id.startswith("mailserver_store")] == [
        "mailserver_store.E001"
    ]


@pytest.mark.parametrize("limit", [-1, "64K", 1.5, True])
def test_a_row_limit_that_is_no_number_of_bytes_is_an_error(settings, limit):
    from django.core.checks import run_checks

    settings.MAIL_STORE_ROW_LIMIT = limit
    assert [e.id for e in run_checks() if e.id.startswith("mailserver_store")] == [
        "mailserver_store.E005"
    ]


def test_a_store_that_cannot_write_defers_and_runs_no_view(db, settings, tmp_path):
    from tests.mailapp.models import Ticket

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    settings.MAIL_STORE_ROOT = str(blocker)
    result = Client(raise_request_exception=False).send(MESSAGE, recipient="help@desk.example.com")
    assert result.outcome is Outcome.TEMPORARY_FAILURE
    assert not Ticket.objects.exists() and not InboundMessage.objects.exists()


@pytest.mark.parametrize("mode", [0o600, 0o644])
def test_permissions_can_be_chosen(tmp_path, mode):
    storage = MessageStorage(location=str(tmp_path), file_permissions_mode=mode)
    from django.core.files.base import ContentFile

    name = storage.save("inbound/x.eml", ContentFile(MESSAGE))
    assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode
