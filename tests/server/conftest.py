"""
Fixtures for the server tests: a real MailServer on a real socket, run in a
thread with its own event loop (as runmailserver runs it in the main one),
and a plain-socket LMTP client that shows every reply line as sent.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from mailserver.wire import Endpoint, parse_endpoint

from . import views

ROOT = Path(__file__).resolve().parents[2]
MESSAGE = b"From: Ann <ann@example.org>\nTo: ok@example.com\nSubject: hello\n\nHi there.\n"


class ServerThread(threading.Thread):
    """A MailServer serving in a thread until stop()."""

    def __init__(self, **options):
        super().__init__(daemon=True, name="test-mailserver")
        self.options = options
        self.ready = threading.Event()
        self.server = None
        self.error: BaseException | None = None

    def run(self) -> None:
        from mailserver.server import MailServer

        async def main():
            self.server = MailServer(**self.options)
            await self.server.start()
            self.ready.set()
            await self.server.wait_stopped()

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported by start()
            self.error = exc
        finally:
            self.ready.set()

    def start(self) -> ServerThread:
        super().start()
        self.ready.wait(10)
        if self.error is not None:
            raise self.error
        return self

    @property
    def address(self) -> Endpoint:
        return self.server.address

    def stop(self, timeout: float = 10) -> None:
        if self.is_alive():
            self.server.shutdown_threadsafe()
            self.join(timeout)
        assert not self.is_alive(), "the server did not stop"


class Client:
    """An LMTP/SMTP client on a plain socket: it checks nothing itself."""

    def __init__(self, address: Endpoint | str, timeout: float = 10):
        if isinstance(address, str):
            address = parse_endpoint(address)
        if address.is_unix:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.settimeout(timeout)
            self.sock.connect(address.path)
        else:
            self.sock = socket.create_connection((address.host, address.port), timeout=timeout)
        self.file = self.sock.makefile("rb")

    def reply(self) -> str:
        """One reply; the lines of a multi-line one joined by newlines."""
        lines = []
        while True:
            line = self.file.readline()
            if not line:
                lines.append("<closed>")
                break
            lines.append(line.decode().rstrip("\r\n"))
            if line[3:4] != b"-":
                break
        return "\n".join(lines)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, line: str) -> str:
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def data(self, message: bytes) -> None:
        """Send a message as DATA carries it (after the 354)."""
        from mailserver.wire import dot_stuff

        self.send(dot_stuff(message) + b".\r\n")

    def deliver(
        self, recipients: list[str], message: bytes = MESSAGE, sender: str = "ann@example.org"
    ) -> list[str]:
        """MAIL, RCPT each, DATA: every reply in order."""
        replies = [self.command(f"MAIL FROM:<{sender}>")]
        accepted = 0
        for recipient in recipients:
            replies.append(self.command(f"RCPT TO:<{recipient}>"))
            accepted += replies[-1].startswith("250")
        replies.append(self.command("DATA"))
        if replies[-1].startswith("354"):
            self.data(message)
            replies += [self.reply() for _ in range(accepted)]
        return replies

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def socket_dir():
    # AF_UNIX paths are limited to about 100 bytes: pytest's tmp_path can be longer.
    path = tempfile.mkdtemp(prefix="ms-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def server_settings(settings):
    settings.ROOT_MAILCONF = "tests.server.mailconf"
    settings.MAIL_MIDDLEWARE = ["mailserver.middleware.CommonMiddleware"]
    settings.MAIL_MAX_MESSAGE_SIZE = 64 * 1024
    views.seen.clear()
    views.release.clear()
    yield settings
    views.release.set()  # no slow view outlives its test


@pytest.fixture
def start_server(socket_dir):
    """start_server(**MailServer options) -> a running ServerThread, stopped after the test."""
    threads = []

    def start(**options):
        options.setdefault("bind", f"unix:{socket_dir}/lmtp.sock")
        thread = ServerThread(**options).start()
        threads.append(thread)
        return thread

    yield start
    views.release.set()
    for thread in threads:
        thread.stop()


@pytest.fixture
def lmtp(start_server):
    """A running LMTP server on a unix socket, and a client that said LHLO."""
    thread = start_server()
    client = Client(thread.address)
    assert client.reply().startswith("220 ")
    assert client.command("LHLO client.example").startswith("250-")
    yield client
    client.close()


@pytest.fixture(scope="session")
def server_env(tmp_path_factory):
    """Environment for runmailserver and django-mailpipe as real processes."""
    db = tmp_path_factory.mktemp("serverdb") / "mail.sqlite3"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.server.settings",
        "PYTHONPATH": str(ROOT),
        "MAILSERVER_TEST_DB": str(db),
    }


def mailpipe_command() -> list[str]:
    """The installed console script, as an MTA runs it."""
    script = Path(sys.executable).with_name("django-mailpipe")
    if script.exists():
        return [str(script)]
    found = shutil.which("django-mailpipe")
    return [found] if found else [sys.executable, "-m", "mailserver.pipe"]


def wait_for_socket(path: str, process: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {process.communicate()}")
        if os.path.exists(path):
            probe = socket.socket(socket.AF_UNIX)
            try:
                probe.connect(path)
                return
            except OSError:
                pass
            finally:
                probe.close()
        time.sleep(0.05)
    raise AssertionError("the server did not start listening")
