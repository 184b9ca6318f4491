"""
The relay mode of django-mailpipe (``--via ADDRESS``): hand the message and
its envelope to a running ``runmailserver`` over LMTP, and exit with what
the server said about each recipient.

A pipe transport still starts one process per message, but this one does
not set Django up, parse the message, or load the ``email`` package: it
reads standard input, speaks a few lines of LMTP over a socket and exits.
So it costs little more than starting Python, and the views run in the warm
server.

Each recipient's reply becomes an exit status by the rules of the outcome
table (:mod:`mailserver.status`): 2xx is delivered (0), 4xx defers (75,
EX_TEMPFAIL), and a 5xx bounces with the code of the table row that has the
same enhanced status code (5.1.1 exits 67, 5.7.1 exits 77, ...). A permanent
reply whose enhanced code is in no row exits 69, EX_UNAVAILABLE, the code of
the table's generic refusal. With several recipients the decisive reply is
chosen as the in-process pipe chooses (:func:`mailserver.status.exit_status`):
a temporary failure first, then the first permanent one. Its enhanced code
and text are printed as the one output line, which Postfix's pipe(8) reads
before the exit status. A server that cannot be reached, breaks the
protocol or does not answer in time defers the message (75).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from .status import Outcome

# Reading a reply line: more than this is not an LMTP server talking.
MAX_REPLY_LINE = 4096


@dataclass(frozen=True)
class Endpoint:
    """Where a server listens: a unix socket path, or a host and a TCP port."""

    path: str = ""
    host: str = ""
    port: int = 0

    @property
    def is_unix(self) -> bool:
        return bool(self.path)

    def __str__(self) -> str:
        if self.path:
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_endpoint(text: str) -> Endpoint:
    """
    ``unix:/path`` (or just an absolute path) for a unix socket; ``host:port``,
    ``[v6-address]:port`` or Postfix's ``inet:host:port`` for TCP.
    """
    text = text.strip()
    if text.startswith("unix:") or text.startswith("/"):
        path = text[5:] if text.startswith("unix:") else text
        if not path:
            raise ValueError(f"{text!r}: no socket path")
        return Endpoint(path=path)
    if text.startswith("inet:"):
        text = text[5:]
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{text!r} is neither unix:/path nor host:port")
    return Endpoint(host=host, port=int(port))


class RelayError(OSError):
    """The server could not be reached, broke the protocol, or was too slow."""


@dataclass(frozen=True)
class Reply:
    """One SMTP/LMTP reply: its code, enhanced status code (or "") and text."""

    code: int
    enhanced: str
    text: str
    lines: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def parse(cls, lines: Sequence[str]) -> Reply:
        code = int(lines[0][:3])
        texts = []
        enhanced = ""
        for line in lines:
            text = line[4:].strip()
            first, _, rest = text.partition(" ")
            if _is_enhanced(first, code):
                enhanced = enhanced or first
                text = rest
            texts.append(text)
        return cls(code, enhanced, " ".join(t for t in texts if t), tuple(lines))

    @property
    def outcome(self) -> Outcome:
        """The row this reply stands for; see the module docstring."""
        if self.code < 400:
            return Outcome.DELIVERED
        if self.code < 500:
            rows = [o for o in Outcome if o.is_temporary]
            fallback = Outcome.TEMPORARY_FAILURE
        else:
            rows = [o for o in Outcome if o.is_permanent]
            fallback = Outcome.REJECTED
        for outcome in rows:
            if outcome.enhanced == self.enhanced:
                return outcome
        return fallback

    def dsn_line(self) -> str:
        """
        The server's enhanced code and text. A reply without an enhanced code
        gets the class's "other or undefined status" (RFC 3463, X.0.0).
        """
        enhanced = self.enhanced or f"{str(self.code)[0]}.0.0"
        return " ".join(f"{enhanced} {self.text}".split())


def _is_enhanced(token: str, code: int) -> bool:
    parts = token.split(".")
    return (
        len(parts) == 3
        and all(p.isdigit() and 0 < len(p) <= 3 for p in parts)
        and parts[0] == str(code)[0]
    )


def decide(replies: Sequence[Reply]) -> tuple[Outcome, str]:
    """The outcome that sets the exit status, and the line to print ("" on success)."""
    for wanted in ("is_temporary", "is_permanent"):
        for reply in replies:
            if getattr(reply.outcome, wanted):
                return reply.outcome, reply.dsn_line()
    return Outcome.DELIVERED, ""


def wire_format(raw: bytes) -> bytes:
    """
    The message as DATA carries it: CRLF line ends, dot-stuffed, ending in a
    line break (the terminating dot line is not included).
    """
    data = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\r\n.", b"\r\n..")


def xtext(value: str) -> str:
    """RFC 3461 xtext, as XFORWARD values are written."""
    return "".join(
        c if "!" <= c <= "~" and c not in "+=" else "".join(f"+{b:02X}" for b in c.encode())
        for c in value
    )


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
                raise RelayError(
                    "the mail server closed the connection"
                    if not line
                    else "the mail server sent an overlong reply line"
                )
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if len(text) < 3 or not text[:3].isdigit() or text[3:4] not in ("", " ", "-"):
                raise RelayError(f"not an LMTP reply: {text[:80]!r}")
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
    Raises OSError (RelayError, TimeoutError, ConnectionError...) when the
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
        data = wire_format(raw)
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
        replies: list = []
        for recipient in recipients:
            reply = conn.command(f"RCPT TO:<{recipient}>")
            replies.append(None if reply.code < 400 else reply)
        if all(r is not None for r in replies):
            return replies
        go = conn.command("DATA")
        if go.code != 354:
            return [r or go for r in replies]
        conn.send(data + b".\r\n")
        return [r or conn.reply() for r in replies]
    finally:
        conn.close()


def relay(
    via: str,
    stdin,
    sender: str | None,
    recipients: Sequence[str],
    *,
    queue_id: str = "",
    client_address: str = "",
    max_size: int | None = None,
    deadline: float | None = None,
    dry_run: bool = False,
) -> tuple[Outcome, str]:
    """
    What ``django-mailpipe --via`` does once its options are parsed: returns
    the outcome (whose exit code the process exits with) and the line to
    print. Our own configuration errors defer, as everywhere in the pipe.
    """
    from .pipe import read_message

    def misconfigured(text: str) -> tuple[Outcome, str]:
        return Outcome.MISCONFIGURED, Outcome.MISCONFIGURED.dsn_line(text)

    try:
        endpoint = parse_endpoint(via)
    except ValueError as exc:
        return misconfigured(f"--via: {exc}")
    if dry_run:
        return misconfigured("--dry-run needs Django: it cannot be combined with --via")
    if sender is None:
        # LMTP has no way to say "unknown sender", and <> would make every
        # message a bounce to the views.
        return misconfigured("--via needs the envelope sender: pass --sender")
    recipients = [r for r in recipients if r]
    if not recipients:
        return misconfigured("--via needs the envelope recipients: pass --recipient")
    try:
        if stdin is None:
            import sys

            if sys.stdin is None:
                raise OSError("no standard input")
            stdin = sys.stdin.buffer
        raw, size = read_message(stdin, max_size or None)
    except OSError as exc:
        outcome = Outcome.TEMPORARY_FAILURE
        return outcome, outcome.dsn_line(f"cannot read the message: {exc}")
    if raw is None:
        outcome = Outcome.TOO_BIG
        return outcome, outcome.dsn_line(
            f"message size {size} exceeds the limit of {max_size} bytes"
        )
    if deadline is None:
        from .conf import DEFAULTS  # Only the dict: reading it loads no Django.

        deadline = DEFAULTS["MAIL_PIPE_DEADLINE"]
    try:
        replies = send(
            endpoint,
            raw,
            sender,
            recipients,
            queue_id=queue_id,
            client_address=client_address,
            timeout=deadline or None,
        )
    except OSError as exc:
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, OSError) and exc.errno:
            reason = os.strerror(exc.errno)
        outcome = Outcome.TEMPORARY_FAILURE
        return outcome, outcome.dsn_line(f"mail server at {endpoint} unavailable: {reason}")
    return decide(replies)
