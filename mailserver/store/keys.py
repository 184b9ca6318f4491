"""
What "the same message" is: the idempotency key, defined here and nowhere else.

A message is handled once per envelope recipient. The MTA may deliver it
again (the pipe was killed, the reply to the MTA was lost), and an upstream
MTA that timed out may send it again, which reaches us through another queue
entry with one more ``Received`` line. Both must find the first delivery's
record. Two different messages that happen to share a Message-ID (a broken
mailer, a forged one) must not. So the key is built from what the sender
wrote, not from what names it:

    key = SHA-256("mailserver-store/1" LF recipient LF content)
    content = SHA-256(the message, with line endings as LF, the header
                      fields of MAIL_STORE_TRACE_HEADERS left out (with
                      their folded lines), and line breaks at its very end
                      dropped)

``recipient`` is the envelope recipient normalised as the resolver sees it
(brackets gone, domain lower-cased in its Unicode form, the subaddress
kept: ``ticket+1@`` and ``ticket+2@`` are two recipients), in UTF-8 (the
lone surrogates of undecodable bytes on a command line passed through). The
trace fields are those added on the way and per delivery (Received,
Return-Path, Delivered-To, Authentication-Results, ...), so a re-send
matches; everything else, Date and Message-ID included, counts. Line
endings differ between the pipe (LF) and LMTP (CRLF), and some transports
add a blank line at the end, so neither counts.

The raw digest, SHA-256 of the exact bytes, names the stored file: the N
recipients of one message share it.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..handlers import Raw

VERSION = b"mailserver-store/1"
CHUNK = 1 << 16
# A field name is never longer than this; a line that shows no colon by
# then is no trace field.
_NAME_MAX = 128


@dataclass(frozen=True)
class Fingerprint:
    """The two digests of one message: ``content`` for the key, ``raw`` for the file."""

    content: bytes
    raw: str
    size: int

    def key(self, recipient: str) -> str:
        """The idempotency key of this message for ``recipient``."""
        return hashlib.sha256(
            VERSION
            + b"\n"
            + normalise_recipient(recipient).encode("utf-8", "surrogatepass")
            + b"\n"
            + self.content
        ).hexdigest()


def normalise_recipient(recipient: str) -> str:
    from ..addresses import parse

    return parse(recipient).full


def fingerprint(raw: Raw, trace_headers: Sequence[str] | None = None) -> Fingerprint:
    """Both digests in one pass over ``raw`` (bytes or a binary file), a chunk at a time."""
    if trace_headers is None:
        from ..conf import settings

        trace_headers = settings.MAIL_STORE_TRACE_HEADERS
    digest = _ContentDigest(trace_headers)
    raw_hash = hashlib.sha256()
    size = 0
    for chunk in _chunks(raw):
        raw_hash.update(chunk)
        size += len(chunk)
        digest.feed(chunk)
    return Fingerprint(digest.finish(), raw_hash.hexdigest(), size)


def _chunks(raw):
    if isinstance(raw, (bytes, bytearray, memoryview)):
        view = memoryview(raw)
        for start in range(0, len(view), CHUNK):
            yield view[start : start + CHUNK]
    else:
        raw.seek(0)
        while chunk := raw.read(CHUNK):
            yield chunk


class _ContentDigest:
    """
    Hashes a message as the key sees it, fed in chunks of any size: nothing
    is held but the start of the current header line (up to its colon).
    """

    def __init__(self, trace_headers):
        self.patterns = [p.lower() for p in trace_headers]
        self.hash = hashlib.sha256()
        self.carry_cr = False  # a chunk ended in CR: is it half of a CR LF?
        self.newlines = 0  # line breaks held back: dropped if the message ends here
        self.in_header = True
        self.line_start = True
        self.head = b""  # the current header line so far, until it is classified
        self.skipping = False  # the current field is a trace field

    def feed(self, chunk) -> None:
        data = bytes(chunk)
        if self.carry_cr:
            data = b"\r" + data
        self.carry_cr = data.endswith(b"\r")
        if self.carry_cr:
            data = data[:-1]
        self._process(data.replace(b"\r\n", b"\n"))

    def finish(self) -> bytes:
        if self.carry_cr:  # a CR at the very end, with no LF after it
            self.carry_cr = False
            self._process(b"\r")
        if self.head:
            self._classify(final=True)
        return self.hash.digest()

    def _process(self, data: bytes) -> None:
        if self.in_header:
            data = self._header(data)
        if data:
            self._emit(data)

    def _emit(self, data: bytes) -> None:
        body = data.rstrip(b"\n")
        if body:
            self.hash.update(b"\n" * self.newlines + body)
            self.newlines = len(data) - len(body)
        else:
            self.newlines += len(data)

    def _header(self, data: bytes) -> bytes:
        """Consume header lines from ``data``; return what follows the header section."""
        while data:
            if self.line_start:
                # Gather the line's start until it can be told apart.
                end = data.find(b"\n")
                take = len(data) if end < 0 else end + 1
                self.head += data[:take]
                data = data[take:]
                if not self._classify(final=False):
                    continue  # still undecided; need more input
                if not self.in_header:
                    return data
            else:
                end = data.find(b"\n")
                piece = data if end < 0 else data[: end + 1]
                data = data[len(piece) :]
                if not self.skipping:
                    self._emit(piece)
                if end >= 0:
                    self.line_start = True
        return b""

    def _classify(self, final: bool) -> bool:
        """
        Decide what the gathered line start is: the blank line that ends
        the header section, a folded line of the field before, or a new
        field (trace or not). False while the line start says too little.
        """
        head = self.head
        complete = head.endswith(b"\n")
        if head == b"\n":
            self.in_header = False
            self.head = b""
            self._emit(head)
            return True
        if head[:1] in (b" ", b"\t"):
            pass  # folded: the field's decision stands
        elif b":" in head:
            name = head.split(b":", 1)[0].strip().decode("latin-1").lower()
            self.skipping = any(fnmatch.fnmatchcase(name, p) for p in self.patterns)
        elif complete or final or len(head) > _NAME_MAX:
            self.skipping = False  # no field at all: the message's own text
        else:
            return False
        self.head = b""
        self.line_start = complete
        if not self.skipping:
            self._emit(head)
        return True
