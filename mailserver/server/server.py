"""
The listening server: sockets, who may connect, the worker threads, and a
shutdown that loses no message.

On SIGTERM (or SIGINT) the server drains: idle sessions are told ``421`` and
closed, a session in the middle of DATA finishes its message, gets its
replies and then the ``421``, new connections are answered ``421`` and
closed, and the process exits once no session is left and the worker
threads are done. The client keeps anything it was told ``421`` about and
tries again later. A second SIGTERM or SIGINT stops at once: sessions are
cut without replies, which the client also retries. So does the drain
deadline (MAIL_SERVER_DRAIN_TIMEOUT), politely: past it, the sessions left
(a client still sending, a view still running) are told ``421`` and the
process exits.

SIGHUP reloads nothing: code, settings and the mailconf are loaded once, at
start. It is logged and otherwise ignored, so that a stray hangup (a closed
terminal, a log rotation script) neither stops the server nor seems to have
done something. To load new code, restart it: SIGTERM drains it first.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal
import socket
import stat
import threading
from collections.abc import Iterable, Mapping

from ..conf import settings
from ..limits import max_message_size
from ..transport import printable
from ..wire import Endpoint, parse_endpoint
from .delivery import Delivery
from .protocol import (
    ALL_STUCK,
    NOT_ALLOWED,
    SHUTTING_DOWN,
    TOO_BUSY,
    LMTPSession,
    SMTPSession,
)
from .workers import WorkerPool

logger = logging.getLogger("mailserver.server")


class EscapeFilter(logging.Filter):
    """
    Escapes what aiosmtpd logs on ``mail.log``: it logs an unknown command
    word as the client sent it (an escape sequence, a carriage return), and
    only the ``mailserver`` loggers escape at the call site.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                printable(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        if isinstance(record.msg, str):
            record.msg = printable(record.msg)
        return True


_escape_filter = EscapeFilter()


def parse_networks(networks: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n, strict=False) for n in networks]


class MailServer:
    """
    An LMTP (or SMTP) server in front of the dispatch core. Settings fill
    whatever is not given::

        server = MailServer("unix:/run/mailserver/lmtp.sock")
        asyncio.run(server.serve(handle_signals=True))
    """

    # Made in start(), in the event loop that serves.
    _loop: asyncio.AbstractEventLoop
    _no_sessions: asyncio.Event
    _done: asyncio.Future[None]

    def __init__(
        self,
        bind: str | Endpoint | None = None,
        *,
        lmtp: bool = True,
        workers: int | None = None,
        allowed_networks: Iterable[str] | None = None,
        max_sessions: int | None = None,
        timeout: float | None = None,
        mailconf: str | None = None,
        socket_mode: int | None = 0o660,
        hostname: str | None = None,
    ):
        bind = bind if bind is not None else settings.MAIL_SERVER_BIND
        self.endpoint = parse_endpoint(bind) if isinstance(bind, str) else bind
        self.lmtp = lmtp
        self.workers = workers or settings.MAIL_SERVER_WORKERS
        self.allowed_networks = parse_networks(
            settings.MAIL_SERVER_ALLOWED_NETWORKS if allowed_networks is None else allowed_networks
        )
        self.max_sessions = max_sessions or settings.MAIL_SERVER_MAX_SESSIONS
        self.timeout = timeout or settings.MAIL_SERVER_TIMEOUT
        self.session_limit = settings.MAIL_SERVER_SESSION_LIMIT
        self.min_data_rate = settings.MAIL_SERVER_MIN_DATA_RATE
        self.junk_command_limit = settings.MAIL_SERVER_JUNK_COMMAND_LIMIT
        self.hard_error_limit = settings.MAIL_SERVER_HARD_ERROR_LIMIT
        self.deadline = settings.MAIL_SERVER_DEADLINE
        self.drain_timeout = settings.MAIL_SERVER_DRAIN_TIMEOUT
        self.max_size = max_message_size()
        self.mailconf = mailconf
        self.socket_mode = socket_mode
        # Computed once: aiosmtpd would look the name up in DNS per session.
        self.hostname = hostname or socket.gethostname() or "localhost"
        self.executor = WorkerPool(self.workers, name="mailserver")
        mail_log = logging.getLogger("mail.log")  # aiosmtpd's
        if _escape_filter not in mail_log.filters:
            mail_log.addFilter(_escape_filter)
        self.handler = Delivery(self)
        self.sessions: set = set()
        self.draining = False
        self.forced = False
        self.address: Endpoint | None = None  # where it listens, once started
        self._listener: asyncio.AbstractServer | None = None
        self._socket_file: tuple[int, int] | None = None  # (device, inode) of our socket
        self._drain_timer: asyncio.TimerHandle | None = None
        self._signals = False

    @property
    def protocol_name(self) -> str:
        return "LMTP" if self.lmtp else "SMTP"

    def reply(self, template: str) -> str:
        return template.format(host=self.hostname)

    # Starting -----------------------------------------------------------------

    def _make_session(self):
        cls = LMTPSession if self.lmtp else SMTPSession
        return cls(
            self.handler,
            server=self,
            hostname=self.hostname,
            ident=f"{'LMTP' if self.lmtp else 'ESMTP'} django-mailserver",
            data_size_limit=None,  # Announced and enforced by us, with 5.3.4.
            enable_SMTPUTF8=True,
            decode_data=False,
            timeout=self.timeout,
            loop=self._loop,
        )

    async def start(self, *, handle_signals: bool = False) -> None:
        """
        Listen; returns once the socket is bound. With ``handle_signals``,
        the signal handlers are in place before the socket exists, so that
        a SIGTERM or SIGHUP sent as soon as the server is seen listening is
        handled, never fatal.
        """
        self._loop = asyncio.get_running_loop()
        self._no_sessions = asyncio.Event()
        self._no_sessions.set()
        self._done = self._loop.create_future()
        if handle_signals:
            self.install_signal_handlers()
        endpoint = self.endpoint
        if endpoint.is_unix:
            sock = self._bind_unix(endpoint.path)
            self._listener = await self._loop.create_unix_server(self._make_session, sock=sock)
            self.address = endpoint
        else:
            self._listener = await self._loop.create_server(
                self._make_session, endpoint.host, endpoint.port, reuse_address=True
            )
            host, port = self._listener.sockets[0].getsockname()[:2]
            self.address = Endpoint(host=host, port=port)
        logger.info(
            "Serving %s on %s with %d worker threads",
            self.protocol_name,
            self.address,
            self.workers,
        )
        from django.db import connections

        for alias in short_lived_databases(connections.settings):
            logger.warning(
                "Database %r has CONN_MAX_AGE = 0: each message opens a new connection to "
                "it (on PostgreSQL, a new server process). Give runmailserver persistent "
                "connections: CONN_MAX_AGE (and CONN_HEALTH_CHECKS) in its DATABASES entry.",
                alias,
            )

    def _bind_unix(self, path: str) -> socket.socket:
        """
        A listening unix socket at ``path``, bound here rather than by
        asyncio, which would remove any socket file in the way, live or not.
        """
        _remove_stale_socket(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            if self.socket_mode is not None:
                # Before listen(): nobody connects while the mode is wider.
                os.chmod(path, self.socket_mode)
            info = os.stat(path)
            self._socket_file = (info.st_dev, info.st_ino)
            sock.listen(socket.SOMAXCONN)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    async def serve(self, *, handle_signals: bool = False) -> None:
        """Start, then run until shut down and drained."""
        await self.start(handle_signals=handle_signals)
        await self.wait_stopped()

    async def wait_stopped(self) -> None:
        try:
            await self._done
        finally:
            if self._signals:
                for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    self._loop.remove_signal_handler(signum)
                self._signals = False

    def install_signal_handlers(self) -> None:
        """
        SIGTERM and SIGINT drain, SIGHUP is logged; main thread only. Called
        by ``start(handle_signals=True)`` before the socket is bound.
        """
        if self._signals:
            return
        loop = self._loop
        loop.add_signal_handler(signal.SIGTERM, self.shutdown)
        loop.add_signal_handler(signal.SIGINT, self.shutdown)
        loop.add_signal_handler(signal.SIGHUP, self._hangup)
        self._signals = True

    def _hangup(self) -> None:
        logger.warning(
            "SIGHUP: nothing reloaded (code and settings load once, at start); "
            "send SIGTERM to drain and restart the server to load changes"
        )

    # Sessions -----------------------------------------------------------------

    def admit(self, transport: asyncio.BaseTransport) -> str | None:
        """None to let a new connection in, else the reply that turns it away."""
        if self.draining:
            return self.reply(SHUTTING_DOWN)
        if self.stuck_out():
            return self.reply(ALL_STUCK)
        if len(self.sessions) >= self.max_sessions:
            logger.warning("Refused a session: %d sessions open", len(self.sessions))
            return self.reply(TOO_BUSY)
        if not self.endpoint.is_unix and not self.allows(transport.get_extra_info("peername")):
            logger.warning(
                "Refused a client not in MAIL_SERVER_ALLOWED_NETWORKS: %s",
                printable(str(transport.get_extra_info("peername"))),
            )
            return self.reply(NOT_ALLOWED)
        return None

    def allows(self, peer) -> bool:
        try:
            address = ipaddress.ip_address(peer[0])
        except (TypeError, ValueError, IndexError):
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.allowed_networks)

    def allows_xforward(self, peer) -> bool:
        """
        Whether a client may say XFORWARD (rewrite the queue id and client
        address that are logged): over TCP, one in MAIL_SERVER_ALLOWED_NETWORKS;
        on a unix socket, anyone the socket's file mode lets connect, which
        is the MTA's delivery agent: the mode is the access control there.
        """
        return self.endpoint.is_unix or self.allows(peer)

    # Worker threads -------------------------------------------------------------

    def stuck_out(self) -> bool:
        """Every worker thread is stuck in a view: no new message can be handled."""
        return self.executor.exhausted

    def report_stuck(self, thread: threading.Thread | None, recipient: str) -> None:
        """A view ran past MAIL_SERVER_DEADLINE: say where, and replace its thread."""
        if thread is None:
            logger.warning(
                "A message waited past the deadline of %g s for a worker thread (%d of %d "
                "busy); its recipients were deferred (451 4.3.0)",
                self.deadline,
                self.executor.running,
                self.executor.workers,
            )
            return
        stack = self.executor.declare_stuck(thread)
        logger.error(
            "A view ran past the deadline of %g s for <%s> in thread %s, and still runs; "
            "its recipients were deferred (451 4.3.0). %d of at most %d threads are stuck%s. "
            "Where it is:\n%s",
            self.deadline,
            printable(recipient),
            thread.name,
            self.executor.stuck,
            self.executor.max_threads,
            ": no new message is accepted until one returns"
            if self.executor.exhausted
            else "; a new thread replaces it",
            stack.rstrip(),
        )

    def session_opened(self, session) -> None:
        self.sessions.add(session)
        self._no_sessions.clear()

    def session_closed(self, session) -> None:
        self.sessions.discard(session)
        if not self.sessions:
            self._no_sessions.set()

    # Stopping -----------------------------------------------------------------

    def shutdown(self) -> None:
        """
        Drain and stop (see the module docstring); call it in the event
        loop's thread. Called again while draining, stop at once.
        """
        if self.draining:
            self._force()
            return
        self.draining = True
        busy = [s for s in self.sessions if s.busy]
        logger.info("Shutting down: %d message(s) in flight; again to stop at once", len(busy))
        for session in list(self.sessions):
            if not session.busy:
                session.goodbye(self.reply(SHUTTING_DOWN))
        if self.drain_timeout:
            self._drain_timer = self._loop.call_later(self.drain_timeout, self._drain_expired)
        self._loop.create_task(self._finish())

    def _drain_expired(self) -> None:
        """
        MAIL_SERVER_DRAIN_TIMEOUT passed: tell every session left 421 and
        stop. A view still running is abandoned (its client was told 421
        and retries); the process then exits without waiting for it.
        """
        if self._done.done():
            return
        viewing = [s for s in self.sessions if s.in_view]
        logger.warning(
            "Drain deadline (%g s) passed: closing %d session(s) with 421, %d of them "
            "waiting for a view",
            self.drain_timeout,
            len(self.sessions),
            len(viewing),
        )
        for session in list(self.sessions):
            session.goodbye(self.reply(SHUTTING_DOWN))
        if viewing or self.executor.running:
            self.forced = True  # the process must not wait for those threads
        self.executor.shutdown(wait=False, cancel_futures=True)
        self._close_listener()
        self._done.set_result(None)

    def shutdown_threadsafe(self) -> None:
        """:meth:`shutdown`, from any thread."""
        self._loop.call_soon_threadsafe(self.shutdown)

    def _force(self) -> None:
        if self.forced:
            return
        self.forced = True
        logger.warning("Stopping now: %d session(s) cut", len(self.sessions))
        for session in list(self.sessions):
            if session.transport is not None:
                session.transport.abort()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self._close_listener()
        if not self._done.done():
            self._done.set_result(None)

    async def _finish(self) -> None:
        await self._no_sessions.wait()
        if self.forced or self._done.done():
            return
        # Views may still run for clients that went away: wait for them here,
        # without blocking the loop (an async view needs it to finish) and
        # without a thread that the drain deadline could not stop waiting.
        # A view already declared stuck is not waited for.
        while self.executor.active:
            await asyncio.sleep(0.05)
        self.executor.shutdown(wait=False)
        self._close_listener()
        if self._drain_timer is not None:
            self._drain_timer.cancel()
        if not self._done.done():
            self._done.set_result(None)
        logger.info("Stopped")

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            if self.endpoint.is_unix:
                _remove_own_socket(self.endpoint.path, self._socket_file)


def short_lived_databases(databases: Mapping[str, Mapping]) -> list[str]:
    """
    The databases a long-running server would connect to anew for every
    message: those with ``CONN_MAX_AGE`` 0, Django's default, which suits
    a process per request (or per message, as the pipe's) and not a server
    whose worker threads live on. The message-per-connection cost is the
    largest part of a message's on PostgreSQL (benchmarks/README.md).
    """
    from ..diagnose import configured_databases

    return [
        alias
        for alias in configured_databases(databases)
        if databases[alias].get("CONN_MAX_AGE", 0) == 0
    ]


def _remove_stale_socket(path: str) -> None:
    """
    Remove a socket file left by a server that died, and nothing else: not
    a live server's socket, not a file that is not a socket, not another
    user's socket. A socket is stale only when connecting to it is refused
    (ECONNREFUSED: nobody listens); any other failure, EACCES first, says
    nothing about whether a server is behind it, so the file stays and the
    server refuses to start, saying why.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise OSError(f"{path} exists and is not a socket; remove it or choose another path")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        pass  # stale; removed below if it is ours
    except OSError as exc:
        raise OSError(
            f"{path}: cannot tell whether a server is listening on it "
            f"({exc.strerror or exc}); it is left in place: stop that server, or remove "
            "the file if none runs, or choose another path"
        ) from None
    else:
        raise OSError(f"{path}: another server is listening on it")
    finally:
        probe.close()
    if info.st_uid != os.geteuid():
        raise OSError(
            f"{path} is a stale socket of another user (uid {info.st_uid}); it is left in "
            "place: remove it as that user, or choose another path"
        )
    os.unlink(path)


def _remove_own_socket(path: str, ours: tuple[int, int] | None) -> None:
    """Remove the socket file at ``path`` only if it is still the one this server made."""
    try:
        info = os.lstat(path)
    except OSError:
        return
    if ours is not None and (info.st_dev, info.st_ino) == ours:
        try:
            os.unlink(path)
        except OSError:
            pass
