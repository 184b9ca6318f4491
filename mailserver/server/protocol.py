"""
The SMTP and LMTP conversations: aiosmtpd's, with what a delivery server
needs on top.

aiosmtpd parses the commands; this module changes three things about it.

* ``DATA`` is read here. aiosmtpd answers a too-big message or a long line
  with one reply, but an LMTP client waits for one reply per recipient (RFC
  2033, 4.2) and would hang; a line longer than 1,000 bytes is common in
  real mail and is not a reason to refuse it. The size limit is counted
  while reading and what is over it is never kept. Only ``CRLF . CRLF`` ends
  the data: a bare LF before the dot does not (the "SMTP smuggling" trick).
* ``XFORWARD`` (Postfix's extension) is understood, for the queue id and
  client address that go into the log.
* A session can be turned away at the greeting (not allowed, too many
  sessions, shutting down) and closed with 421 while the server drains.

The replies about the conversation itself are below; every reply about a
message's outcome comes from the outcome table.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session, syntax

from ..wire import dot_unstuff, unxtext

if TYPE_CHECKING:  # pragma: no cover
    from .server import MailServer

# Replies about the session, not about a message.
MAIL_OK = "250 2.1.0 OK"
RCPT_OK = "250 2.1.5 OK"
XFORWARD_OK = "250 2.0.0 OK"
START_DATA = "354 End data with <CR><LF>.<CR><LF>"
NO_RECIPIENTS = "503 5.5.1 Error: no valid recipients"
DATA_SYNTAX = "501 5.5.4 Syntax: DATA"
XFORWARD_SYNTAX = "501 5.5.4 Syntax: XFORWARD attribute=value ..."
ONE_RECIPIENT = "452 4.5.3 One recipient per transaction; send the others in another one"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
SHUTTING_DOWN = "421 4.3.2 {host} shutting down, try again later"
TOO_BUSY = "421 4.3.2 {host} has too many sessions, try again later"
# RFC 5321, 3.1: a server may refuse a client with 554 in place of its greeting.
NOT_ALLOWED = "554 5.7.1 {host}: your address is not allowed to connect"

XFORWARD_ATTRIBUTES = ("NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE")

# What this module relies on in aiosmtpd beyond its documented hooks: members
# that are private or undocumented, with the parameters we pass them. They were
# written against aiosmtpd 1.4 (pinned to that minor version in pyproject.toml);
# tests/server/test_aiosmtpd_contract.py fails loudly when one of them changes.
AIOSMTPD_CONTRACT = {
    "SMTP": {
        "_set_rset_state": ["self"],
        "_set_post_data_state": ["self"],
        "_reset_timeout": ["self", "duration"],
        "check_helo_needed": ["self", "helo"],
        "check_auth_needed": ["self", "caller_method"],
        "push": ["self", "status"],
        "connection_made": ["self", "transport"],
        "connection_lost": ["self", "error"],
        "_create_session": ["self"],
        "_create_envelope": ["self"],
    },
    # Set on each connection, read here: the stream DATA is read from.
    "instance": ["_reader", "session", "envelope", "transport", "event_handler"],
    "Session": ["peer", "host_name"],
    "Envelope": ["mail_from", "mail_options", "rcpt_tos", "rcpt_options", "content"],
}

# Room for a recipient list: RFC 5321, 4.5.3.1.8 asks for at least 100.
MAX_RECIPIENTS = 1000

# How much of a line is buffered before it is taken in pieces; also the
# reader's flow-control mark, so a large message is read in large chunks.
READ_LIMIT = 1 << 16

# While a view runs, the idle timeout is pushed this far away: how long a
# view may take is for the client to decide (Postfix waits 10 minutes).
FOREVER = 365 * 24 * 3600


class MailSession(Session):
    """aiosmtpd's per-connection state, and ours beside it."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        super().__init__(loop)
        # What the client said with XFORWARD, for this transaction's log line.
        self.xforward: dict[str, str] = {}


class MailEnvelope(Envelope):
    """aiosmtpd's transaction, and the size of its message once read."""

    def __init__(self) -> None:
        super().__init__()
        self.size: int | None = None


# For the type checker the mixin is an SMTP, whose members it uses; at run
# time it stays a plain mixin ahead of LMTP or SMTP in the bases.
if TYPE_CHECKING:
    _Protocol = SMTP
else:
    _Protocol = object


class SessionMixin(_Protocol):
    """What both conversations add to aiosmtpd's."""

    lmtp = False
    line_length_limit = READ_LIMIT

    def __init__(self, handler, *, server: MailServer, **kwargs):
        super().__init__(handler, **kwargs)
        self.server = server
        self.busy = False  # from DATA until its replies are sent
        self.refused = False

    # Connection -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        refusal = self.server.admit(transport)
        if refusal:
            # Before aiosmtpd sets up the session: only this line is said.
            self.refused = True
            transport.write(refusal.encode("ascii") + b"\r\n")
            transport.close()
            return
        super().connection_made(transport)
        self.server.session_opened(self)

    def _create_session(self) -> MailSession:
        return MailSession(self.loop)

    def _create_envelope(self) -> MailEnvelope:
        return MailEnvelope()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.refused:
            return
        try:
            super().connection_lost(exc)
        finally:
            self.server.session_closed(self)

    def goodbye(self, reply: str) -> None:
        """Say ``reply`` unasked and close, as RFC 5321 allows for 421."""
        transport = self.transport
        if isinstance(transport, asyncio.Transport) and not transport.is_closing():
            transport.write(reply.encode("ascii", "backslashreplace") + b"\r\n")
            transport.close()

    async def push(self, status: str | bytes) -> None:
        # Reply texts can quote addresses; never let one break the encoding.
        if isinstance(status, str):
            status = status.encode("ascii", "backslashreplace")
        await super().push(status)

    # Commands ---------------------------------------------------------------

    def _set_rset_state(self) -> None:
        super()._set_rset_state()
        if isinstance(self.session, MailSession):  # None before the first connection
            self.session.xforward = {}

    def state(self) -> tuple[MailSession, MailEnvelope]:
        """
        The session and the transaction, as made by the methods above. A
        method, not a property: aiosmtpd reads every attribute of a new
        protocol object, before there is a session.
        """
        assert isinstance(self.session, MailSession) and isinstance(self.envelope, MailEnvelope)
        return self.session, self.envelope

    @syntax("XFORWARD attribute=value ...")
    async def smtp_XFORWARD(self, arg: str | None) -> None:
        if self.envelope is not None and self.envelope.mail_from:
            await self.push("503 5.5.1 Error: XFORWARD inside a mail transaction")
            return
        attributes = {}
        for item in (arg or "").split():
            name, eq, value = item.partition("=")
            if not eq or name.upper() not in XFORWARD_ATTRIBUTES:
                await self.push(XFORWARD_SYNTAX)
                return
            value = unxtext(value)
            attributes[name.upper()] = "" if value == "[UNAVAILABLE]" else value
        if not attributes:
            await self.push(XFORWARD_SYNTAX)
            return
        session, _ = self.state()
        session.xforward.update(attributes)
        await self.push(XFORWARD_OK)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str | None) -> None:
        if await self.check_helo_needed("LHLO" if self.lmtp else "HELO"):
            return
        if await self.check_auth_needed("DATA"):
            return
        session, envelope = self.state()
        if arg:
            await self.push(DATA_SYNTAX)
            return
        if not envelope.rcpt_tos:
            await self.push(NO_RECIPIENTS)
            return
        self.busy = True
        try:
            await self.push(START_DATA)
            raw, size = await self.read_data(self.server.max_size)
            # As aiosmtpd's own DATA leaves them for its handle_DATA hook;
            # the content is None when the message was over the limit.
            envelope.content = envelope.original_content = raw
            envelope.size = size
            self._reset_timeout(FOREVER)
            replies = await self.event_handler.handle_DATA(self, session, envelope)
            self._reset_timeout()
            if not self.lmtp:
                replies = replies[:1]
            for reply in replies:
                await self.push(reply)
        finally:
            self.busy = False
            self._set_post_data_state()
            session.xforward = {}
        if self.server.draining:
            self.goodbye(self.server.reply(SHUTTING_DOWN))

    async def read_data(self, limit: int | None) -> tuple[bytes | None, int]:
        """
        The message, dot-unstuffed and with LF line ends (as a pipe
        transport hands it over, so a view sees the same bytes either way),
        and its size. ``None`` for the message when it was over ``limit``:
        the rest is read and dropped so that the session can go on.

        The data is read up to each ".\r\n" rather than line by line: a
        message has few lines that end with a dot, and only the one right
        after a CRLF ends the data.
        """
        reader = self._reader
        loop = asyncio.get_running_loop()
        chunks: list[bytes] = []
        size = 0
        too_big = False
        tail = b"\r\n"  # the last two bytes so far; the DATA line ended with CRLF
        last_reset = loop.time()
        while True:
            try:
                piece = await reader.readuntil(b".\r\n")
                found = True
            except asyncio.LimitOverrunError as exc:
                # No ".\r\n" in what is buffered: take it and read on.
                piece = await reader.read(max(exc.consumed, 1))
                found = False
            except asyncio.IncompleteReadError:
                raise ConnectionResetError("connection closed during DATA") from None
            if not piece:
                raise ConnectionResetError("connection closed during DATA")
            end = found and (tail + piece[:-3])[-2:] == b"\r\n"
            if end:
                piece = piece[:-3]
            size += len(piece)
            if not too_big:
                if limit is not None and size > limit:
                    too_big = True
                    chunks = []
                else:
                    chunks.append(piece)
            if end:
                break
            tail = (tail + piece)[-2:]
            now = loop.time()
            if now - last_reset > 1:
                # A client still sending is not idle.
                self._reset_timeout()
                last_reset = now
        if too_big:
            return None, size
        data = dot_unstuff(b"".join(chunks))
        # The size as sent, each line ending a CRLF, as the SIZE limit counts.
        return data, len(data) + data.count(b"\n")


class LMTPSession(SessionMixin, LMTP):
    """LMTP (RFC 2033): one reply per accepted recipient after DATA."""

    lmtp = True


class SMTPSession(SessionMixin, SMTP):
    """SMTP: one reply per transaction, so one recipient per transaction."""
