"""
A small LMTP client: hands a message and its envelope to a running
``runmailserver`` and returns what the server said about each recipient.

It is what ``django-mailpipe --via`` speaks (see :mod:`mailserver.pipe`), so
it loads neither Django nor the ``email`` package: the pipe stays as cheap
as starting Python and the views run in the warm server. The wire format
(replies, dot-stuffing, xtext) is :mod:`mailserver.wire`'s, shared with the
server.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence

from .wire import MAX_REPLY_LINE, Endpoint, Reply, dot_stuff, parse_endpoint, xtext


class LMTPError(OSError):
    """The server could not be reached, broke the protocol, or was too slow."""


class _Connection:
    """A socket and an overall deadline for everything said on it."""

    def __init__(self, endpoint: Endpoint, deadline: float | None):
        self.deadline = deadline
        if endpoint.is_unix:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._arm()
            try:
                self.sock.connect(endpoint.path)
            except BaseException:
                self.sock.close()
                raise
        else:
            self.sock = socket.create_connection(
                (endpoint.host, endpoint.port), timeout=self._remaining()
            )
        self.file = self.sock.makefile("rb")

    def _remaining(self) -> float | None:
        if self.deadline is None:
            return None
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the mail server did not answer in time")
        return remaining

    def _arm(self) -> None:
        self.sock.settimeout(self._remaining())

    def send(self, data: bytes) -> None:
        self._arm()
        self.sock.sendall(data)

    def reply(self) -> Reply:
        lines = []
        while True:
            self._arm()
            line = self.file.readline(MAX_REPLY_LINE)
            if not line.endswith(b"\n"):
                raise LMTPError(
                    "the mail server closed the connection"
                    if not line
                    else "the mail server sent an overlong reply line"
                )
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if len(text) < 3 or not text[:3].isdigit() or text[3:4] not in ("", " ", "-"):
                raise LMTPError(f"not an LMTP reply: {text[:80]!r}")
            lines.append(text)
            if text[3:4] != "-":
                return Reply.parse(lines)

    def command(self, line: str) -> Reply:
        self.send(line.encode("utf-8") + b"\r\n")
        return self.reply()

    def close(self) -> None:
        try:
            self.sock.sendall(b"QUIT\r\n")
        except OSError:
            pass
        self.file.close()
        self.sock.close()


def send(
    endpoint: Endpoint | str,
    raw: bytes,
    sender: str,
    recipients: Sequence[str],
    *,
    queue_id: str = "",
    client_address: str = "",
    timeout: float | None = 300.0,
) -> list[Reply]:
    """
    Deliver ``raw`` over LMTP and return one reply per recipient, in order:
    the RCPT reply for a refused recipient, else its reply after DATA.
    Raises OSError (LMTPError, TimeoutError, ConnectionError...) when the
    conversation cannot be completed.
    """
    if isinstance(endpoint, str):
        endpoint = parse_endpoint(endpoint)
    deadline = None if not timeout else time.monotonic() + timeout
    conn = _Connection(endpoint, deadline)
    try:
        greeting = conn.reply()
        if greeting.code >= 400:
            return [greeting] * len(recipients)
        hello = conn.command(f"LHLO {socket.gethostname() or 'localhost'}")
        if hello.code >= 400:
            return [hello] * len(recipients)
        # Each line after the first names an extension, by its first word.
        extensions = {line[4:].split()[0].upper() for line in hello.lines[1:] if line[4:].split()}
        data = dot_stuff(raw)
        if "XFORWARD" in extensions and (queue_id or client_address):
            attrs = []
            if queue_id:
                attrs.append(f"IDENT={xtext(queue_id)}")
            if client_address:
                attrs.append(f"ADDR={xtext(client_address)}")
            conn.command("XFORWARD " + " ".join(attrs))  # Only for the logs.
        params = []
        if "SIZE" in extensions:
            params.append(f"SIZE={len(data)}")
        if "8BITMIME" in extensions and not data.isascii():
            params.append("BODY=8BITMIME")
        if "SMTPUTF8" in extensions and not all(a.isascii() for a in (sender, *recipients)):
            params.append("SMTPUTF8")
        mail = conn.command(" ".join([f"MAIL FROM:<{sender}>", *params]))
        if mail.code >= 400:
            return [mail] * len(recipients)
        replies: list[Reply | None] = []
        for recipient in recipients:
            reply = conn.command(f"RCPT TO:<{recipient}>")
            replies.append(None if reply.code < 400 else reply)
        if all(r is not None for r in replies):
            return [r for r in replies if r is not None]
        go = conn.command("DATA")
        if go.code != 354:
            return [r or go for r in replies]
        conn.send(data + b".\r\n")
        return [r or conn.reply() for r in replies]
    finally:
        conn.close()
