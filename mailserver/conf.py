"""
The app's settings and their defaults, documented in one place.

Read through :data:`mailserver.conf.settings`, which looks each name up in
the project's settings at access time (so ``override_settings`` works in
tests) and falls back to the default below.
"""

from __future__ import annotations

from typing import Any

DEFAULTS: dict[str, Any] = {
    # Dotted path of the module holding the address patterns, like ROOT_URLCONF.
    "ROOT_MAILCONF": None,
    # From address of replies whose view names none, and of notices the app sends.
    "MAILER_DAEMON_ADDRESS": "mailer-daemon@localhost",
    # Middleware factories, in order, like MIDDLEWARE. None are needed: the
    # handler maps Http404 and Django's PermissionDenied itself.
    "MAIL_MIDDLEWARE": [],
    # Splits "ticket+42" into "ticket" and the subaddress "42". Empty disables it.
    "MAIL_SUBADDRESS_DELIMITER": "+",
    # Match local parts case-insensitively (RFC 5321 says they are case-sensitive,
    # but most mail systems treat them otherwise).
    "MAIL_CASE_INSENSITIVE_LOCAL_PART": False,
    # Run each message's view in a transaction on the default database, like
    # ATOMIC_REQUESTS; replies are sent after the commit.
    "MAIL_ATOMIC_REQUESTS": False,
    # Largest message accepted, in bytes; None means no limit.
    "MAIL_MAX_MESSAGE_SIZE": 25 * 1024 * 1024,
    # Seconds django-mailpipe may spend on one run before it gives up and
    # defers. Well below Postfix's command_time_limit (1000 s) and Exim's pipe
    # timeout (1 h), both of which bounce.
    "MAIL_PIPE_DEADLINE": 300,
    # Structure limits: what exceeds one is refused with 5.6.0. Each guards
    # the parser and the view against a message built to exhaust them.
    "MAIL_MAX_MIME_PARTS": 500,
    "MAIL_MAX_MIME_DEPTH": 25,
    # Header fields in any one header section; bytes in one physical header
    # line, in one (folded) field, and in one whole header section.
    "MAIL_MAX_HEADER_COUNT": 1000,
    "MAIL_MAX_HEADER_LINE_LENGTH": 16384,
    "MAIL_MAX_HEADER_FIELD_LENGTH": 32768,
    "MAIL_MAX_HEADER_SECTION_SIZE": 262144,
    # Automatic replies (RFC 3834): an answer to a message that is itself
    # automatic is not sent. Senders whose local part matches one of these
    # (shell-style, case-insensitive) are automatic...
    "MAIL_AUTOMATIC_SENDERS": [
        "mailer-daemon", "postmaster", "*-bounces", "*-bounce", "bounce-*", "bounces+*",
        "*-request", "owner-*", "*-owner", "noreply", "no-reply", "do-not-reply",
    ],
    # ...and so are messages from mailing lists (List-Id, List-Unsubscribe).
    "MAIL_SUPPRESS_REPLIES_TO_LISTS": True,
    # Header that marks replies as ours; a message that carries it came back.
    "MAIL_LOOP_HEADER": "X-Mailserver-Loop",
    # Addresses of this service besides MAILER_DAEMON_ADDRESS: a message whose
    # Delivered-To shows one of them has been here before.
    "MAIL_OWN_ADDRESSES": [],
    # Mail the sender a notice when a message is refused. Off: the MTA's bounce
    # is the notice. Never sent to a null or automatic sender.
    "MAIL_FAILURE_NOTICES": False,
    # Headers, in order, that give the recipient when the transport gives none.
    "MAIL_RECIPIENT_HEADERS": ["Delivered-To", "X-Original-To", "Envelope-To"],
    # runmailserver: where it listens, "unix:/path" or "host:port". Loopback by
    # default: the server is for the local MTA, never for the Internet.
    "MAIL_SERVER_BIND": "127.0.0.1:8024",
    # Networks whose clients may connect when bound to TCP (a unix socket is
    # guarded by its file mode instead). Others get 554 5.7.1 at the greeting.
    "MAIL_SERVER_ALLOWED_NETWORKS": ["127.0.0.0/8", "::1/128"],
    # Threads that run the views; a slow view holds one, not the server.
    "MAIL_SERVER_WORKERS": 8,
    # Sessions open at once; more get 421 4.3.2 and are retried by the MTA.
    "MAIL_SERVER_MAX_SESSIONS": 100,
    # Seconds a client may stay silent before the session is closed with 421
    # 4.4.2 (RFC 5321's server timeout is 5 minutes; Postfix's smtpd_timeout is
    # 300 s). A running view is never cut short by it.
    "MAIL_SERVER_TIMEOUT": 300,
    # DATA: the client has MAIL_SERVER_TIMEOUT to send the message and earns
    # one more second per this many bytes it sends, never more than the
    # timeout at once, so that trickling a line now and then does not keep
    # a session: Postfix's smtpd_min_data_rate (500). 0 turns it off.
    "MAIL_SERVER_MIN_DATA_RATE": 500,
    # Seconds a whole session may last, counted from the connection; then it
    # is closed with 421 4.4.2 (never while a view runs: its replies come
    # first). Postfix's LMTP client reuses a connection for at most 300 s
    # (lmtp_connection_reuse_time_limit), so an hour cuts only abuse.
    "MAIL_SERVER_SESSION_LIMIT": 3600,
    # NOOP, RSET and VRFY a session may send before each counts as an error,
    # and errors (unknown commands, bad syntax, commands out of sequence)
    # before the session is closed with 421 4.7.0: Postfix's
    # smtpd_junk_command_limit (100) and smtpd_hard_error_limit (20). Both
    # counts start again after each message. None lifts a limit.
    "MAIL_SERVER_JUNK_COMMAND_LIMIT": 100,
    "MAIL_SERVER_HARD_ERROR_LIMIT": 20,
    # Seconds the views of one message may take in runmailserver. Past it each
    # recipient not yet answered gets 451 4.3.0 (the MTA retries), the stuck
    # thread is logged with its stack and replaced. Below Postfix's
    # lmtp_data_done_timeout (600 s), after which it gives up waiting for the
    # replies and retries anyway; the same as MAIL_PIPE_DEADLINE.
    "MAIL_SERVER_DEADLINE": 300,
    # Seconds runmailserver drains after SIGTERM before it tells the sessions
    # left 421 and exits: under systemd's default stop timeout (90 s), after
    # which it would be killed without a word to its clients.
    "MAIL_SERVER_DRAIN_TIMEOUT": 60,
}


class MailSettings:
    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"{name!r} is not a mailserver setting")
        from django.conf import settings

        return getattr(settings, name, DEFAULTS[name])


settings = MailSettings()
