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
  sessions, shutting down, every worker stuck) and closed with 421 while
  the server drains.
* Limits on what a client may spend, as Postfix's smtpd sets them (see
  postconf(5)): an idle timeout, a deadline on DATA that a client earns
  more time against only by sending (smtpd_min_data_rate), a time limit on
  the whole session, a count of junk commands (NOOP, RSET, VRFY) and of
  errors, after which the session is closed with 421.
* Every reply carries an enhanced status code (RFC 2034), except the
  greeting and the answer to LHLO/EHLO/HELO, which RFC 2034 leaves out, and
  nothing the client sent is echoed back unescaped.

The replies about the conversation itself are below; every reply about a
message's outcome comes from the outcome table.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from typing import IO, TYPE_CHECKING

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session, syntax

from ..transport import new_spool, printable
from ..wire import Unstuffer, is_enhanced, unxtext

if TYPE_CHECKING:  # pragma: no cover
    from .server import MailServer

logger = logging.getLogger("mailserver.server")

# Replies about the session, not about a message.
MAIL_OK = "250 2.1.0 OK"
RCPT_OK = "250 2.1.5 OK"
XFORWARD_OK = "250 2.0.0 OK"
START_DATA = "354 End data with <CR><LF>.<CR><LF>"
NO_RECIPIENTS = "503 5.5.1 Error: no valid recipients"
DATA_SYNTAX = "501 5.5.4 Syntax: DATA"
XFORWARD_SYNTAX = "501 5.5.4 Syntax: XFORWARD attribute=value ..."
XFORWARD_VALUE = "501 5.5.4 Error: XFORWARD {name} holds a control character"
XFORWARD_DENIED = "550 5.7.0 Error: XFORWARD is not allowed from your address"
NEED_HELO = "503 5.5.1 Error: send {helo} first"
HELO_SYNTAX = "501 5.5.4 Syntax: {helo} hostname"
ONE_RECIPIENT = "452 4.5.3 One recipient per transaction; send the others in another one"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
SHUTTING_DOWN = "421 4.3.2 {host} shutting down, try again later"
TOO_BUSY = "421 4.3.2 {host} has too many sessions, try again later"
ALL_STUCK = "421 4.3.2 {host} has no worker left to run a view, try again later"
# RFC 5321, 3.1: a server may refuse a client with 554 in place of its greeting.
NOT_ALLOWED = "554 5.7.1 {host}: your address is not allowed to connect"
# The limits below, as Postfix's smtpd words them (4.4.2: connection dropped;
# 4.7.0: a security or policy matter).
TIMED_OUT = "421 4.4.2 {host} Error: timeout exceeded"
SESSION_EXPIRED = "421 4.4.2 {host} Error: session time limit exceeded"
TOO_MANY_ERRORS = "421 4.7.0 {host} Error: too many errors"
# RFC 5321, 2.3.8: only CR LF ends a line. A dot line ended, or preceded,
# by a bare LF is how "SMTP smuggling" hides a second message in the
# first; it is answered at once rather than waited on, and the session
# closed, since what follows cannot be read as either data or commands.
BARE_LF = "521 5.5.2 {host} Error: bare <LF> received"

XFORWARD_ATTRIBUTES = ("NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE")

# The enhanced status code of a reply that aiosmtpd words without one
# (RFC 3463: X.5.x are protocol errors; 5.5.2 a command not understood,
# 5.5.4 bad arguments, 5.5.1 a command out of place or not implemented).
DEFAULT_ENHANCED = {
    "221": "2.0.0",
    "250": "2.0.0",
    "252": "2.0.0",
    "500": "5.5.2",
    "501": "5.5.4",
    "502": "5.5.1",
    "503": "5.5.1",
    "504": "5.5.4",
    "530": "5.7.0",
    "555": "5.5.4",
}
# Replies that count as a client's error (smtpd_hard_error_limit): the
# command was not understood, or not in its place. A refused recipient is
# not one: for an LMTP server the client is the MTA, and what it relays.
ERRORS = frozenset((b"500", b"501", b"502", b"503", b"504"))

# What this module relies on in aiosmtpd beyond its documented hooks: members
# that are private or undocumented, with the parameters we pass them. They were
# written against aiosmtpd 1.4 (pinned to that minor version in pyproject.toml);
# tests/server/test_aiosmtpd_contract.py fails loudly when one of them changes.
AIOSMTPD_CONTRACT = {
    "SMTP": {
        "_set_rset_state": ["self"],
        "_set_post_data_state": ["self"],
        "_reset_timeout": ["self", "duration"],
        "_timeout_cb": ["self"],
        "check_helo_needed": ["self", "helo"],
        "check_auth_needed": ["self", "caller_method"],
        "push": ["self", "status"],
        "connection_made": ["self", "transport"],
        "connection_lost": ["self", "error"],
        "_create_session": ["self"],
        "_create_envelope": ["self"],
        "_getaddr": ["self", "arg"],
        "smtp_NOOP": ["self", "arg"],
        "smtp_RSET": ["self", "arg"],
        "smtp_VRFY": ["self", "arg"],
        "smtp_EHLO": ["self", "hostname"],
        "smtp_HELO": ["self", "hostname"],
    },
    "LMTP": {
        "smtp_LHLO": ["self", "arg"],
    },
    # Set on each connection, read here: the stream DATA is read from, and
    # the idle timeout (seconds) given to the constructor.
    "instance": [
        "_reader",
        "session",
        "envelope",
        "transport",
        "event_handler",
        "_timeout_duration",
    ],
    "Session": ["peer", "host_name"],
    "Envelope": ["mail_from", "mail_options", "rcpt_tos", "rcpt_options", "content"],
}

# Room for a recipient list: RFC 5321, 4.5.3.1.8 asks for at least 100.
MAX_RECIPIENTS = 1000

# How much of a line is buffered before it is taken in pieces; also the
# reader's flow-control mark, so a large message is read in large chunks.
READ_LIMIT = 1 << 16

# The path nearly every MTA sends: <dot-atom@domain> (RFC 5321's Mailbox with a
# Dot-string local part and a plain domain), then the parameters.
_SIMPLE_PATH = re.compile(
    r"\s*<((?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)>"
)


class BareLineFeed(Exception):
    """A dot line ended, or was preceded, by a bare LF inside DATA."""


class DataClock:
    """
    The time a client has left to send DATA, as Postfix's smtpd counts it
    with smtpd_min_data_rate: the timeout to start with; each read takes
    the time it waited and gives back a second per ``rate`` bytes, never
    more than the timeout in hand. Without a rate, each read gives the
    whole timeout back (a client still sending is not idle).
    """

    __slots__ = ("timeout", "rate", "remaining", "last")

    def __init__(self, timeout: float, rate: float | None, now: float):
        self.timeout = timeout
        self.rate = rate
        self.remaining = timeout
        self.last = now

    def received(self, size: int, now: float) -> None:
        if self.rate:
            earned = self.remaining - (now - self.last) + size / self.rate
            self.remaining = min(earned, self.timeout)
        else:
            self.remaining = self.timeout
        self.last = now

    def left(self, now: float) -> float:
        return self.remaining - (now - self.last)


class MailSession(Session):
    """aiosmtpd's per-connection state, and ours beside it."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        super().__init__(loop)
        # What the client said with XFORWARD, for this transaction's log line.
        self.xforward: dict[str, str] = {}


class MailEnvelope(Envelope):
    """
    aiosmtpd's transaction, and its message once read: ``spool`` holds it
    (see :func:`mailserver.transport.new_spool`), ``size`` its size as sent.
    A message over the size limit leaves ``spool`` None.
    """

    def __init__(self) -> None:
        super().__init__()
        self.size: int | None = None
        self.spool: IO[bytes] | None = None


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
        self.in_view = False  # while the views run: no timeout applies
        self.refused = False
        self.bare_replies = False  # answering LHLO/EHLO/HELO: no enhanced codes
        self.errors = 0
        self.junk = 0
        self.deadline: float | None = None  # when the whole session must end
        self.data_clock: DataClock | None = None  # while DATA is read

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
        if self.server.session_limit:
            self.deadline = self.loop.time() + self.server.session_limit
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
            transport.write(self.reply_bytes(reply) + b"\r\n")
            transport.close()

    @property
    def closing(self) -> bool:
        """
        The session was closed (said goodbye to) but commands the client
        sent ahead may still be read from the buffer: they get no reply,
        and no message is taken after the goodbye.
        """
        transport = self.transport
        return transport is None or transport.is_closing()

    # Time limits ------------------------------------------------------------

    def _reset_timeout(self, duration: float | None = None) -> None:
        # aiosmtpd re-arms the idle timer after each command; the session's
        # own deadline caps it, except while a view runs.
        duration = duration or self._timeout_duration
        if self.deadline is not None and not self.in_view:
            left = self.deadline - self.loop.time()
            if left < duration:
                duration = left if left > 0.001 else 0.001
        super()._reset_timeout(duration)

    def _timeout_cb(self) -> None:
        if self.in_view:
            return  # the replies re-arm the timer once the views are done
        now = self.loop.time()
        expired = self.deadline is not None and now >= self.deadline
        if not expired and self.data_clock is not None:
            left = self.data_clock.left(now)
            if left > 0:  # the client earned more time while sending
                self._reset_timeout(left)
                return
        peer = printable(str(self.session.peer if self.session else "?"))
        logger.info("Closed a session (%s): %s", peer, "time limit" if expired else "timeout")
        self.goodbye(self.server.reply(SESSION_EXPIRED if expired else TIMED_OUT))

    # Replies ------------------------------------------------------------------

    def reply_bytes(self, status: str) -> bytes:
        """
        A reply line as sent: with an enhanced status code when it has none,
        what the client sent and the reply quotes escaped (a NUL, a line
        break), in ASCII, so that an address quoted back never breaks it.
        """
        return _reply_bytes(status, self.bare_replies)

    async def push(self, status: str | bytes, *, counts: bool = True) -> None:
        if self.closing:
            return  # nothing after the goodbye
        if isinstance(status, str):
            status = self.reply_bytes(status)
        await super().push(status)
        if counts and status[:3] in ERRORS:
            self.client_error()

    def client_error(self) -> None:
        """Count an error; at the limit (smtpd_hard_error_limit), say 421 and close."""
        self.errors += 1
        limit = self.server.hard_error_limit
        if limit and self.errors >= limit:
            logger.info("Closed a session: %d errors", self.errors)
            self.goodbye(self.server.reply(TOO_MANY_ERRORS))

    def junk_command(self) -> None:
        """NOOP, RSET, VRFY: past smtpd_junk_command_limit each counts as an error."""
        self.junk += 1
        limit = self.server.junk_command_limit
        if limit and self.junk > limit:
            self.client_error()

    async def check_helo_needed(self, helo: str = "HELO") -> bool:
        assert self.session is not None
        if not self.session.host_name:
            await self.push(NEED_HELO.format(helo="LHLO" if self.lmtp else "HELO or EHLO"))
            return True
        return False

    # Commands ---------------------------------------------------------------

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # aiosmtpd reads every MAIL and RCPT path with the email package's
        # header parser, about a tenth of a millisecond each: the common
        # plain path is read here for the same result, anything else there.
        # (The address is checked in full afterwards, by check_sender and
        # check_recipient.)
        if arg and (simple := _SIMPLE_PATH.match(arg)):
            rest = arg[simple.end() :]
            if not rest or (rest[0] in " \t" and not rest.lstrip(" \t").startswith("(")):
                return simple.group(1), rest.lstrip(" \t")
        return super()._getaddr(arg)

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

    @syntax("NOOP [ignored]")
    async def smtp_NOOP(self, arg: str) -> None:  # noqa: N802 - aiosmtpd's names
        await super().smtp_NOOP(arg)
        self.junk_command()

    @syntax("RSET")
    async def smtp_RSET(self, arg: str) -> None:  # noqa: N802
        await super().smtp_RSET(arg)
        self.junk_command()

    @syntax("VRFY <address>")
    async def smtp_VRFY(self, arg: str) -> None:  # noqa: N802
        await super().smtp_VRFY(arg)
        self.junk_command()

    @syntax("XFORWARD attribute=value ...")
    async def smtp_XFORWARD(self, arg: str | None) -> None:  # noqa: N802
        session, envelope = self.state()
        if not self.server.allows_xforward(session.peer):
            await self.push(XFORWARD_DENIED)
            return
        if envelope.mail_from:
            await self.push("503 5.5.1 Error: XFORWARD inside a mail transaction")
            return
        attributes = {}
        for item in (arg or "").split():
            name, eq, value = item.partition("=")
            name = name.upper()
            if not eq or name not in XFORWARD_ATTRIBUTES:
                await self.push(XFORWARD_SYNTAX)
                return
            value = unxtext(value)
            if printable(value) != value:
                # Logged as is, +0A would end the log line (xtext decodes it).
                await self.push(XFORWARD_VALUE.format(name=name))
                return
            attributes[name] = "" if value == "[UNAVAILABLE]" else value
        if not attributes:
            await self.push(XFORWARD_SYNTAX)
            return
        session.xforward.update(attributes)
        await self.push(XFORWARD_OK)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str | None) -> None:  # noqa: N802
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        session, envelope = self.state()
        if arg:
            await self.push(DATA_SYNTAX)
            return
        if self.closing:
            return
        if not envelope.rcpt_tos:
            # Not the client's error: what follows from refused recipients,
            # which do not count either (a pipelining MTA sends DATA anyway).
            await self.push(NO_RECIPIENTS, counts=False)
            return
        if self.server.stuck_out():
            self.goodbye(self.server.reply(ALL_STUCK))
            return
        self.busy = True
        spool = new_spool()
        handed_over = False
        try:
            await self.push(START_DATA)
            try:
                size = await self.read_data(self.server.max_size, spool)
            except BareLineFeed:
                logger.info("Closed a session: bare <LF> in DATA")
                self.goodbye(self.server.reply(BARE_LF))
                return
            envelope.size = size
            limit = self.server.max_size
            if limit is None or size <= limit:
                spool.seek(0)
                envelope.spool, handed_over = spool, True  # the handler's now
            # While the views run the timer may fire: it does nothing then
            # (see _timeout_cb), and is armed again below.
            self.in_view = True
            try:
                replies = await self.event_handler.handle_DATA(self, session, envelope)
            finally:
                self.in_view = False
            # The replies go out under the idle timeout alone (a client that
            # does not read them is cut), never the session's deadline: it
            # may close the session after them, not between them.
            near = self.deadline is not None and (
                self.deadline - self.loop.time() < self._timeout_duration
            )
            if near:
                super()._reset_timeout()
            else:
                self._reset_timeout()
            if not self.lmtp:
                replies = replies[:1]
            for reply in replies:
                await self.push(reply)
            if near:
                self._reset_timeout()
            # A message went through: earlier slips are forgiven, as Postfix's
            # smtpd forgives them (its error and junk counts start again).
            self.errors = self.junk = 0
        finally:
            if not handed_over:
                spool.close()
            self.busy = False
            self._set_post_data_state()
            session.xforward = {}
        if self.server.draining:
            self.goodbye(self.server.reply(SHUTTING_DOWN))

    async def read_data(self, limit: int | None, spool: IO[bytes]) -> int:
        """
        Read the data of DATA into ``spool``, dot-unstuffed and with LF line
        ends (as a pipe transport hands a message over, so a view sees the
        same bytes either way), and return its size as sent, each line
        ending a CRLF, as the SIZE limit counts it. Past ``limit`` nothing
        more is written: the rest is read and dropped so that the session
        can go on, and the size returned says it was too big.

        The data is read up to each line that starts with a dot rather than
        line by line: a message has few, and only ``CR LF . CR LF`` ends it.
        A dot line with a bare LF before or after it raises BareLineFeed.

        Time: the client has MAIL_SERVER_TIMEOUT to send the data, and
        earns a second more for each MAIL_SERVER_MIN_DATA_RATE bytes it
        sends, never more than the timeout at once (Postfix's
        smtpd_min_data_rate): a client that trickles a line now and then to
        keep the session open runs out of time.
        """
        reader = self._reader
        unstuff = Unstuffer()
        loop = self.loop
        # The idle timer aiosmtpd armed for the DATA command stays armed: the
        # clock only ever moves the deadline later, so when the timer fires
        # it asks the clock whether time is really up (see _timeout_cb).
        clock = self.data_clock = DataClock(
            self._timeout_duration, self.server.min_data_rate, loop.time()
        )
        size = 0
        tail = b"\r\n"  # the last two bytes before what is read next

        def take(data: bytes) -> None:
            nonlocal size
            out = unstuff.feed(data)
            size += len(out) + out.count(b"\n")
            if limit is None or size <= limit:
                spool.write(out)
            clock.received(len(data), loop.time())

        try:
            first = await reader.readexactly(1)
            dot = first == b"."
            if not dot:
                take(first)
                tail = b"\n" + first
            while True:
                if not dot:
                    try:
                        piece = await reader.readuntil(b"\n.")
                    except asyncio.LimitOverrunError as exc:
                        # No line starts with a dot in what is buffered: take it.
                        piece = await reader.read(max(exc.consumed, 1))
                        if not piece:
                            raise ConnectionResetError("connection closed during DATA") from None
                        take(piece)
                        tail = (tail + piece)[-2:]
                        continue
                    piece = piece[:-1]  # the dot: what it starts is read next
                    take(piece)
                    tail = (tail + piece)[-2:]
                # A line starts with a dot; tail says how the line before ended.
                dot = False
                after = await reader.readexactly(1)
                if after == b"\n":
                    raise BareLineFeed()
                if after == b"\r":
                    after += await reader.readexactly(1)
                    if after == b"\r\n":
                        if tail != b"\r\n":
                            raise BareLineFeed()
                        break  # CR LF . CR LF: the end
                # Data: a doubled dot (undone by the unstuffer) or a line that
                # merely starts with one.
                take(b"." + after)
                tail = after[-2:] if len(after) > 1 else b"." + after
        except asyncio.IncompleteReadError:
            raise ConnectionResetError("connection closed during DATA") from None
        finally:
            self.data_clock = None
        out = unstuff.close()
        size += len(out) + out.count(b"\n")
        if limit is None or size <= limit:
            spool.write(out)
        return size


@functools.lru_cache(maxsize=512)
def _reply_bytes(status: str, bare: bool) -> bytes:
    # Cached: most replies are the same few lines, and this runs for each.
    code = status[:3]
    if not bare and code.isdigit() and code[0] in ("2", "4", "5") and code != "220":
        sep = status[3:4] or " "
        text = status[4:]
        if not is_enhanced(text.partition(" ")[0], int(code)):
            status = f"{code}{sep}{DEFAULT_ENHANCED.get(code, code[0] + '.0.0')} {text}"
    return printable(status).encode("ascii", "backslashreplace")


class LMTPSession(SessionMixin, LMTP):
    """LMTP (RFC 2033): one reply per accepted recipient after DATA."""

    lmtp = True

    @syntax("LHLO hostname")
    async def smtp_LHLO(self, arg: str) -> None:  # noqa: N802
        if not arg:
            await self.push(HELO_SYNTAX.format(helo="LHLO"))
            return
        self.bare_replies = True
        try:
            await super().smtp_LHLO(arg)
        finally:
            self.bare_replies = False


class SMTPSession(SessionMixin, SMTP):
    """SMTP: one reply per transaction, so one recipient per transaction."""

    @syntax("EHLO hostname")
    async def smtp_EHLO(self, hostname: str) -> None:  # noqa: N802
        if not hostname:
            await self.push(HELO_SYNTAX.format(helo="EHLO"))
            return
        self.bare_replies = True
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self.bare_replies = False

    @syntax("HELO hostname")
    async def smtp_HELO(self, hostname: str) -> None:  # noqa: N802
        if not hostname:
            await self.push(HELO_SYNTAX.format(helo="HELO"))
            return
        self.bare_replies = True
        try:
            await super().smtp_HELO(hostname)
        finally:
            self.bare_replies = False
