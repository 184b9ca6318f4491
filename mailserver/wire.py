"""
What LMTP and SMTP look like on the wire, shared by the client
(:mod:`mailserver.lmtp_client`, behind ``django-mailpipe --via``) and the
server (:mod:`mailserver.server`): where a server listens, reply lines,
dot-stuffing and RFC 3461 xtext.

Each encoding lives here with its inverse, so that what the client writes is
read back by the server through the same pair of functions; a property test
checks that every pair round-trips. Nothing here loads Django or the
``email`` package: the relay mode must stay as cheap as starting Python.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Reply:
    """One SMTP/LMTP reply: its code, enhanced status code (or "") and text."""

    code: int
    enhanced: str
    text: str
    lines: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def parse(cls, lines: Sequence[str]) -> Reply:
        """A reply from its lines as read, line endings removed."""
        code = int(lines[0][:3])
        texts = []
        enhanced = ""
        for line in lines:
            text = line[4:].strip()
            first, _, rest = text.partition(" ")
            if is_enhanced(first, code):
                enhanced = enhanced or first
                text = rest
            texts.append(text)
        return cls(code, enhanced, " ".join(t for t in texts if t), tuple(lines))

    @property
    def outcome(self) -> Outcome:
        """
        The table row this reply stands for: 2xx is delivered; otherwise the
        row of the same class with the same enhanced code, else the class's
        generic row (a temporary failure, or a refusal).
        """
        if self.code < 400:
            return Outcome.DELIVERED
        temporary = self.code < 500
        for outcome in Outcome:
            same_class = outcome.is_temporary if temporary else outcome.is_permanent
            if same_class and outcome.enhanced == self.enhanced:
                return outcome
        return Outcome.TEMPORARY_FAILURE if temporary else Outcome.REJECTED

    def dsn_line(self) -> str:
        """
        The server's enhanced code and text, as a pipe prints them. A reply
        without an enhanced code gets its class's "other or undefined
        status" (RFC 3463, X.0.0).
        """
        enhanced = self.enhanced or f"{str(self.code)[0]}.0.0"
        return " ".join(f"{enhanced} {self.text}".split())


def is_enhanced(token: str, code: int) -> bool:
    """Whether ``token`` is an RFC 3463 status code of the class of ``code``."""
    parts = token.split(".")
    return (
        len(parts) == 3
        and all(p.isdigit() and 0 < len(p) <= 3 for p in parts)
        and parts[0] == str(code)[0]
    )


def dot_stuff(raw: bytes) -> bytes:
    """
    The message as DATA carries it: CRLF line ends, a dot doubled at the
    start of every line, ending in a line break (the terminating dot line is
    not included).
    """
    data = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\r\n.", b"\r\n..")


def dot_unstuff(data: bytes) -> bytes:
    """
    The inverse of :func:`dot_stuff`: the data of DATA, its terminating dot
    line removed, with the doubled dots undone and LF line ends, as a pipe
    transport hands a message over, so a view sees the same bytes either
    way.
    """
    data = (b"\r\n" + data).replace(b"\r\n..", b"\r\n.")[2:]
    return data.replace(b"\r\n", b"\n")


class Unstuffer:
    """
    :func:`dot_unstuff` a piece at a time, for data read as it arrives and
    written straight to a spool: ``feed()`` each piece as read (the
    terminating dot line left out), then ``close()``. The pieces joined are
    ``dot_unstuff()`` of the data joined, wherever the data was cut: a piece
    that ends in what may be the start of ``CR LF . .`` keeps that tail
    until the next piece says what it is.
    """

    def __init__(self) -> None:
        # As dot_unstuff does: the data starts as if after a line break.
        self._held = b"\r\n"
        self._first = True

    def feed(self, piece: bytes) -> bytes:
        data = self._held + piece
        keep = _partial_tail(data)
        self._held = data[len(data) - keep :] if keep else b""
        return self._convert(data[: len(data) - keep] if keep else data)

    def close(self) -> bytes:
        data, self._held = self._held, b""
        return self._convert(data)

    def _convert(self, data: bytes) -> bytes:
        out = data.replace(b"\r\n..", b"\r\n.").replace(b"\r\n", b"\n")
        if self._first and out:
            # The line break put in front above, now one LF.
            self._first = False
            out = out[1:]
        return out


def _partial_tail(data: bytes) -> int:
    """How many bytes at the end of ``data`` may begin ``CR LF . .``."""
    for tail in (b"\r\n.", b"\r\n", b"\r"):
        if data.endswith(tail):
            return len(tail)
    return 0


def xtext(value: str) -> str:
    """RFC 3461 xtext, as XFORWARD values are written."""
    return "".join(
        c if "!" <= c <= "~" and c not in "+=" else "".join(f"+{b:02X}" for b in c.encode())
        for c in value
    )


def unxtext(value: str) -> str:
    """Decode RFC 3461 xtext (``+2B`` is ``+``), as XFORWARD values are sent."""
    out = bytearray()
    i = 0
    while i < len(value):
        if value[i] == "+" and _is_hex(value[i + 1 : i + 3]):
            out.append(int(value[i + 1 : i + 3], 16))
            i += 3
        else:
            out += value[i].encode("utf-8", "surrogateescape")
            i += 1
    return out.decode("utf-8", "replace")


def _is_hex(text: str) -> bool:
    return len(text) == 2 and all(c in "0123456789ABCDEFabcdef" for c in text)
