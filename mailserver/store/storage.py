"""
Where raw messages are kept: Django's storage API, under an alias of ours.

``STORAGES["mailserver"]`` is used when the project defines it (any storage:
S3 and the like write durably on their own). Otherwise the messages go to
MAIL_STORE_ROOT through :class:`MessageStorage`, a FileSystemStorage that
makes each file durable before saying it is saved: written to a temporary
file in the same directory, fsync'd, renamed into place, and the directory
fsync'd, so that the row pointing to the file never commits before the
file would survive a power cut.

Files are named by the SHA-256 of their bytes: the recipients of one
message, and its redeliveries, share one file, and saving a name that
exists only touches it (see retention: a young file is never swept).

They are spread over 256 directories by the digest's first two hex digits,
all made at once the first time one is missing: a directory made for a
message would cost that message one more fsync (of its parent), and a
deeper spread (65,536 directories) would cost one to most messages for as
long as the store is young. At 30 days' retention a directory holds about
a 256th of a month's mail, which file systems index well.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING

from django.core.files.storage import FileSystemStorage

if TYPE_CHECKING:  # pragma: no cover
    from ..handlers import Raw

ALIAS = "mailserver"
PREFIX = "inbound"


def raw_name(digest: str) -> str:
    """The stored name of a message whose bytes hash to ``digest``."""
    return f"{PREFIX}/{digest[:2]}/{digest}.eml"


def get_storage():
    """The storage of raw messages (a callable, as FileField's ``storage`` takes it)."""
    from django.conf import settings as django_settings
    from django.core.files.storage import storages

    if ALIAS in getattr(django_settings, "STORAGES", {}):
        return storages[ALIAS]
    from ..conf import settings
    from ..exceptions import ImproperlyConfigured

    if not settings.MAIL_STORE_ROOT:
        raise ImproperlyConfigured(
            "mailserver.store needs somewhere to keep messages: set MAIL_STORE_ROOT "
            f'or define STORAGES["{ALIAS}"].'
        )
    return _filesystem(str(settings.MAIL_STORE_ROOT))


_storages: dict[str, MessageStorage] = {}


def _filesystem(location: str) -> MessageStorage:
    storage = _storages.get(location)
    if storage is None:
        storage = _storages[location] = MessageStorage(location=location)
    return storage


class MessageStorage(FileSystemStorage):
    """
    A file system storage that is durable and content-addressed. Files are
    private to the owner and group by default (0640, directories 0750):
    the pipe's user and the web application's may share a group, the world
    may not read mail.
    """

    def __init__(
        self,
        location=None,
        base_url=None,
        file_permissions_mode=0o640,
        directory_permissions_mode=0o750,
    ):
        super().__init__(
            location=location,
            base_url=base_url,
            file_permissions_mode=file_permissions_mode,
            directory_permissions_mode=directory_permissions_mode,
        )

    def get_available_name(self, name, max_length=None):
        # The name says what the bytes are: the same name is the same file.
        return name

    def _save(self, name, content):
        path = self.path(name)
        directory = os.path.dirname(path)
        self._make_directories(directory)
        if os.path.exists(path):
            os.utime(path)
            return name
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".eml")
        try:
            with os.fdopen(fd, "wb") as file:
                for chunk in content.chunks():
                    file.write(chunk)
                file.flush()
                os.fsync(file.fileno())
            if self.file_permissions_mode is not None:
                os.chmod(temporary, self.file_permissions_mode)
            os.replace(temporary, path)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
        _fsync_directory(directory)
        return name

    def _make_directories(self, directory: str) -> None:
        """
        Create what is missing, the new entries made durable in their
        parents; a missing spread directory comes with its 255 siblings
        (see the module's docstring).
        """
        missing = []
        while not os.path.isdir(directory):
            missing.append(directory)
            directory = os.path.dirname(directory)
        prefix = self.path(PREFIX)
        for path in reversed(missing):
            parent = os.path.dirname(path)
            if parent == prefix:
                paths = [os.path.join(prefix, f"{n:02x}") for n in range(256)]
            else:
                paths = [path]
            for each in paths:
                self._make_directory(each)
            # Even when another process made it first: its entry must be
            # durable before a file in it is said to be.
            _fsync_directory(parent)

    def _make_directory(self, path: str) -> None:
        try:
            os.mkdir(path)
        except FileExistsError:
            return
        if self.directory_permissions_mode is not None:
            os.chmod(path, self.directory_permissions_mode)


def _fsync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_raw(raw: Raw, digest: str) -> str:
    """
    Store ``raw`` (bytes or a binary file) durably under its content name,
    unless it is there already; return the name the storage chose.
    """
    from django.core.files import File
    from django.core.files.base import ContentFile

    storage = get_storage()
    name = raw_name(digest)
    if not isinstance(storage, MessageStorage) and storage.exists(name):
        return name  # MessageStorage touches the file instead: see its _save
    content: File
    if isinstance(raw, bytes):
        content = ContentFile(raw, name=name)
    else:
        raw.seek(0)
        content = File(raw, name=name)
    return storage.save(name, content)
