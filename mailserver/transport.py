"""
The transport layer: what every way in does around the dispatch core, in
one place. django-mailpipe, ``manage.py readmail``, runmailserver and the
relay mode (``--via``) each speak to a different peer, but all of them read
a message without holding a large one in memory, refuse one over the size
limit with the same reply, hand it to :func:`~mailserver.handlers.dispatch`
once per recipient, write one log line per recipient, and, where the peer
takes a single answer for several recipients, pick the outcome that decides
it by the same rule.

Importing this module loads neither Django nor the ``email`` package: the
relay mode uses its reading and deciding and must stay as cheap as starting
Python. What dispatches imports the core when called.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Protocol

from .status import Outcome

if TYPE_CHECKING:  # pragma: no cover
    from .envelope import Envelope
    from .exceptions import MailException
    from .handlers import Result

# The logger's name; logging itself is imported where a line is written, so
# that the relay mode, which writes none, does not pay for it.
LOGGER = "mailserver.delivery"

CHUNK = 1 << 16
# Messages larger than this are spooled to a temporary file. Parsing holds
# about three times a message's size at its peak (its lines, then the
# payload they are joined into); a spool in memory would add a fourth, so
# anything that large goes to disk, where reading it back costs far less
# than parsing it.
SPOOL_MEMORY = 1 << 18


# Reading ----------------------------------------------------------------------


def strip_from_line(raw: bytes) -> bytes:
    """Drop a leading mbox ``From `` line."""
    if raw.startswith(b"From "):
        end = raw.find(b"\n")
        return b"" if end < 0 else raw[end + 1 :]
    return raw


def spool_message(stream: IO[bytes], limit: int | None, spool: IO[bytes]) -> int:
    """
    Copy a message from ``stream`` into the binary file ``spool`` and return
    its size. A leading mbox ``From `` line (Exim's default message_prefix,
    Postfix's F flag) is the transport's, not the message's, and is dropped.
    Past ``limit`` the rest is read and thrown away, so that a huge message
    is never held whole and the MTA, still writing, does not meet a closed
    pipe; the size returned then tells the caller it was too big.
    """
    read = getattr(stream, "read1", stream.read)
    size = 0
    head: bytes | None = b""
    while True:
        chunk = read(CHUNK)
        if not chunk:
            break
        if head is not None:
            # Until the first line is whole, it may be a From_ line.
            head += chunk
            if b"\n" not in head and len(head) < CHUNK and head.startswith(b"From "[: len(head)]):
                continue
            chunk = strip_from_line(head) if b"\n" in head else head
            head = None
        size += len(chunk)
        if limit is None or size <= limit:
            spool.write(chunk)
    if head:
        chunk = strip_from_line(head)
        size += len(chunk)
        if limit is None or size <= limit:
            spool.write(chunk)
    return size


def new_spool() -> IO[bytes]:
    """
    Where a message is kept while it is handled: in memory while small, in a
    temporary file past SPOOL_MEMORY, so that a large message is not held in
    memory while it is parsed. Every transport spools into one of these.
    """
    import tempfile

    return tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)


def receive(stream: IO[bytes], limit: int | None) -> tuple[IO[bytes], int]:
    """
    Spool the message (see :func:`new_spool`). Returns the spool, rewound,
    and the size; a size over ``limit`` means the spool holds nothing worth
    dispatching (see :func:`check_size`).
    """
    spool = new_spool()
    size = spool_message(stream, limit, spool)
    spool.seek(0)
    return spool, size


def read_message(stream: IO[bytes], limit: int | None) -> tuple[bytes | None, int]:
    """The message as bytes, or (None, size) when it is over ``limit``."""
    from io import BytesIO

    buffer = BytesIO()
    size = spool_message(stream, limit, buffer)
    if limit is not None and size > limit:
        return None, size
    return buffer.getvalue(), size


def check_size(size: int, limit: int | None) -> MailException | None:
    """The refusal of a message of ``size`` bytes, or None when it fits."""
    if limit is not None and size > limit:
        from .limits import too_big

        return too_big(size, limit)
    return None


# Dispatching ------------------------------------------------------------------


def deliver(
    raw: bytes | IO[bytes],
    envelope: Envelope,
    recipients: Sequence[str],
    *,
    mailconf: str | None = None,
) -> list[Result]:
    """
    Dispatch ``raw`` (bytes, or a binary file holding them) once per
    recipient, in order, and log a line for each. Never raises for what a
    message or a view can do: a recipient whose dispatch fails anyway (a
    signal receiver that raises) is deferred.
    """
    from .handlers import Result, dispatch

    results = []
    for recipient in recipients:
        each = envelope.for_recipient(recipient)
        started = time.perf_counter()
        try:
            result = dispatch(raw, each, mailconf=mailconf)
        except Exception as exc:
            import logging

            logging.getLogger(LOGGER).exception("Deferred the message to <%s>", recipient)
            result = Result(Outcome.TEMPORARY_FAILURE, recipient=recipient, exception=exc)
        log_delivery(
            each,
            result.outcome,
            result.route,
            time.perf_counter() - started,
            recipient=result.recipient,
        )
        results.append(result)
    return results


def refuse(envelope: Envelope, recipients: Sequence[str], exc: MailException) -> list[Result]:
    """
    Every recipient refused before dispatch (a message too big to read, for
    one), logged as a dispatched one would be.
    """
    from .handlers import Result

    results = []
    for recipient in recipients:
        log_delivery(envelope.for_recipient(recipient), exc.outcome, "", 0.0)
        results.append(Result(exc.outcome, str(exc), recipient=recipient, exception=exc))
    return results


def log_delivery(
    envelope: Envelope, outcome: Outcome, route: str, seconds: float, *, recipient: str = ""
) -> None:
    """
    The one log line per recipient, whichever way the message came in. Every
    field the peer chose is passed through :func:`printable`: a line break
    in an address or a queue id would otherwise write a line of its own
    choosing, and a lone surrogate would make the handler drop the line.
    """
    import logging

    logging.getLogger(LOGGER).info(
        "transport=%s queue_id=%s sender=<%s> recipient=<%s> route=%s outcome=%s status=%s "
        "time=%.3fs",
        printable(envelope.transport or "-"),
        printable(envelope.queue_id or "-"),
        printable(envelope.sender or ""),
        printable(recipient or envelope.recipient),
        printable(route or "-"),
        outcome.name.lower(),
        outcome.enhanced,
        seconds,
    )


def printable(text: str) -> str:
    """
    ``text`` as it may go into a log line or a reply: what a reader would not
    see, or would take for the end of the line (C0 and C1 controls, DEL,
    format characters such as bidi overrides, line and paragraph
    separators), is written as a Python escape, and so is a lone surrogate:
    a byte that was not UTF-8, kept by ``surrogateescape``, shows as the
    byte it was (``\\xff``). Everything else, UTF-8 addresses included, is
    kept, so the common case costs one check.
    """
    if text.isprintable() or _only_spaces_hidden(text):
        return text
    return "".join(_escape(ch) if _hidden(ch) else ch for ch in text)


def _only_spaces_hidden(text: str) -> bool:
    # isprintable() is False for any space but " "; only the hidden ones matter.
    return not any(_hidden(ch) for ch in text if not ch.isprintable())


def _hidden(ch: str) -> bool:
    import unicodedata

    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")


def _escape(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape's stand-in for one byte
        return f"\\x{code - 0xDC00:02x}"
    return ch.encode("unicode_escape").decode("ascii")


# Answering --------------------------------------------------------------------


class Answer(Protocol):
    """What a transport decides on: a dispatch Result, or an LMTP Reply."""

    @property
    def outcome(self) -> Outcome: ...

    def dsn_line(self) -> str: ...


def decide(answers: Sequence[Answer]) -> tuple[Outcome, str]:
    """
    The outcome that answers for several recipients at once, where the peer
    takes one answer (a pipe's exit status), and its line ("" on success).

    Any temporary failure wins: the MTA then retries the whole message, and
    a recipient that was delivered is delivered again (the store makes that
    harmless; without it a view may run twice). Else the first permanent
    failure, so that the bounce names a reason; else success.
    """
    for temporary in (True, False):
        for answer in answers:
            outcome = answer.outcome
            if outcome.is_temporary if temporary else outcome.is_permanent:
                return outcome, answer.dsn_line()
    return (answers[0].outcome if answers else Outcome.DELIVERED), ""
