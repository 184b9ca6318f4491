"""
The listening server: sockets, who may connect, the worker threads, and a
shutdown that loses no message.

On SIGTERM (or SIGINT) the server drains: idle sessions are told ``421`` and
closed, a session in the middle of DATA finishes its message, gets its
replies and then the ``421``, new connections are answered ``421`` and
closed, and the process exits once no session is left and the worker
threads are done. The client keeps anything it was told ``421`` about and
tries again later. A second SIGTERM or SIGINT stops at once: sessions are
cut without replies, which the client also retries.

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
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from ..conf import settings
from ..limits import max_message_size
from ..wire import Endpoint, parse_endpoint
from .delivery import Delivery
from .protocol import NOT_ALLOWED, SHUTTING_DOWN, TOO_BUSY, LMTPSession, SMTPSession

logger = logging.getLogger("mailserver.server")


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
        self.max_size = max_message_size()
        self.mailconf = mailconf
        self.socket_mode = socket_mode
        # Computed once: aiosmtpd would look the name up in DNS per session.
        self.hostname = hostname or socket.gethostname() or "localhost"
        self.executor = ThreadPoolExecutor(self.workers, thread_name_prefix="mailserver")
        self.handler = Delivery(self)
        self.sessions: set = set()
        self.draining = False
        self.forced = False
        self.address: Endpoint | None = None  # where it listens, once started
        self._listener: asyncio.AbstractServer | None = None
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

    async def start(self) -> None:
        """Listen; returns once the socket is bound."""
        self._loop = asyncio.get_running_loop()
        self._no_sessions = asyncio.Event()
        self._no_sessions.set()
        self._done = self._loop.create_future()
        endpoint = self.endpoint
        if endpoint.is_unix:
            _remove_stale_socket(endpoint.path)
            self._listener = await self._loop.create_unix_server(self._make_session, endpoint.path)
            if self.socket_mode is not None:
                os.chmod(endpoint.path, self.socket_mode)
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

    async def serve(self, *, handle_signals: bool = False) -> None:
        """Start, then run until shut down and drained."""
        await self.start()
        if handle_signals:
            self.install_signal_handlers()
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
        """SIGTERM and SIGINT drain, SIGHUP is logged; main thread only."""
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
        if len(self.sessions) >= self.max_sessions:
            logger.warning("Refused a session: %d sessions open", len(self.sessions))
            return self.reply(TOO_BUSY)
        if not self.endpoint.is_unix and not self.allows(transport.get_extra_info("peername")):
            logger.warning(
                "Refused a client not in MAIL_SERVER_ALLOWED_NETWORKS: %s",
                transport.get_extra_info("peername"),
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
        self._loop.create_task(self._finish())

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
        if self.forced:
            return
        # Views may still run for clients that went away; wait for them in
        # another thread, as an async view may need this loop to finish.
        await self._loop.run_in_executor(None, self.executor.shutdown, True)
        self._close_listener()
        if not self._done.done():
            self._done.set_result(None)
        logger.info("Stopped")

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            if self.endpoint.is_unix:
                try:
                    os.unlink(self.endpoint.path)
                except OSError:
                    pass


def _remove_stale_socket(path: str) -> None:
    """
    Remove a socket file left by a server that died, but never a live
    server's socket, nor a file that is not a socket.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
        return
    except OSError:
        return
    finally:
        probe.close()
    raise OSError(f"{path}: another server is listening on it")
