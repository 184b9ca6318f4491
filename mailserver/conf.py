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
    # Middleware factories, in order, like MIDDLEWARE.
    "MAIL_MIDDLEWARE": [
        "mailserver.middleware.CommonMiddleware",
    ],
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
    # Seconds a client may stay silent before the session is closed (RFC 5321's
    # server timeout is 5 minutes). A running view is never cut short by it.
    "MAIL_SERVER_TIMEOUT": 300,
}


class MailSettings:
    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"{name!r} is not a mailserver setting")
        from django.conf import settings

        return getattr(settings, name, DEFAULTS[name])


settings = MailSettings()
