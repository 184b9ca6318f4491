"""
The app's settings and their defaults, documented in one place.

Read through :data:`mailserver.conf.settings`, which looks each name up in
the project's settings at access time (so ``override_settings`` works in
tests) and falls back to the default below.
"""

from __future__ import annotations

from typing import Any

DAY = 24 * 60 * 60

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
        "mailer-daemon",
        "postmaster",
        "*-bounces",
        "*-bounce",
        "bounce-*",
        "bounces+*",
        "*-request",
        "owner-*",
        "*-owner",
        "noreply",
        "no-reply",
        "do-not-reply",
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
    # Signed reply addresses (mailserver.signing): a callable or dotted path
    # taking a bound sender's address and returning a per-user value folded
    # into the token; change the value to revoke every address made for them.
    "MAIL_SIGNING_USER_KEY": None,
    # Oldest signed address accepted, in seconds or a timedelta, whatever
    # expiry the address itself carries; None for no limit.
    "MAIL_SIGNING_MAX_AGE": None,
    # Lifetime of the VERP bounce addresses of mailserver.bounces, in seconds.
    "MAIL_BOUNCE_ADDRESS_MAX_AGE": 30 * 24 * 3600,
    # The authserv-ids (RFC 8601) of your own MTA: only Authentication-Results
    # headers naming one of them are read, and only those above the Received
    # header of the hop that brought the message in (see MAIL_TRUSTED_HOPS).
    "MAIL_AUTHSERV_IDS": [],
    # How many Received headers your own MTAs add on the way in (1: the MX
    # delivers to Django itself). Results below the next one were in the
    # message when it arrived, and a sender could have written them.
    "MAIL_TRUSTED_HOPS": 1,
    # Verify DKIM and DMARC in-process (dkimpy, authheaders) when your MTA
    # adds no Authentication-Results header for them.
    "MAIL_VERIFY_SENDERS": False,
    # The TXT lookup in-process verification uses: a callable or dotted path
    # taking a name and returning a list of TXT strings; None for dnspython.
    "MAIL_DNS_RESOLVER": None,
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
    # The store (mailserver.store, when installed). Durations are seconds or a
    # datetime.timedelta. Directory of the raw
    # messages when STORAGES has no "mailserver" alias. No default: mail is
    # private, and MEDIA_ROOT is usually served to the world.
    "MAIL_STORE_ROOT": None,
    # Messages of at most this many bytes are kept in their row rather than
    # as a file of the storage: committed with the row, they cost no file
    # writes and fsyncs of their own. 0 keeps every message in the storage.
    "MAIL_STORE_ROW_LIMIT": 64 * 1024,
    # Finished messages (and their raw files) older than this are deleted by
    # purgemail; unfinished ones and ones with unsent replies never are.
    "MAIL_STORE_RETENTION": 30 * DAY,
    # A raw file no message points to is deleted by purgemail once it is this
    # old (younger ones may belong to a delivery still under way).
    "MAIL_STORE_ORPHAN_GRACE": DAY,
    # Header fields left out of a message's idempotency key: what MTAs and
    # filters add on the way and per delivery (shell-style, case-insensitive).
    # Changing the list changes the keys: a message delivered before and
    # again after the change is handled again.
    "MAIL_STORE_TRACE_HEADERS": [
        "Received",
        "Return-Path",
        "Delivered-To",
        "X-Original-To",
        "Envelope-To",
        "X-Envelope-To",
        "X-Envelope-From",
        "Received-SPF",
        "Authentication-Results",
        "ARC-Seal",
        "ARC-Message-Signature",
        "ARC-Authentication-Results",
        "X-Spam-*",
    ],
    # How a stored message reaches its view. "inline": while the MTA waits,
    # and the view's outcome is the MTA's answer. "queued": the MTA gets 250
    # once the message is stored and the checks that need no view have passed
    # (envelope syntax, size and structure limits, a route for the
    # recipient); the view runs later as a task of Django's Tasks framework
    # (django.tasks, or the django-tasks backport before Django 6), run by
    # the backend's workers. See the README's "Queued processing".
    "MAIL_STORE_PROCESSING": "inline",
    # Queued mode: the TASKS alias and the queue the messages' tasks go to.
    "MAIL_STORE_TASK_BACKEND": "default",
    "MAIL_STORE_TASK_QUEUE": "default",
    # Queued mode: how long a worker holds a message it claimed before
    # another may take it over (the first is presumed dead): longer than any
    # view takes. It is also how long a message may wait unclaimed in the
    # task queue before retrymail hands it to the workers again.
    "MAIL_STORE_LEASE": 10 * 60,
    # Queued mode: a temporary failure is retried after MAIL_STORE_RETRY_DELAY,
    # the delay doubled after each failure up to the maximum (Postfix's
    # minimal_backoff_time and maximal_backoff_time)...
    "MAIL_STORE_RETRY_DELAY": 300,
    "MAIL_STORE_MAX_RETRY_DELAY": 4000,
    # ...until the message is this old; then it is marked failed and ADMINS
    # are told (Postfix's maximal_queue_lifetime).
    "MAIL_STORE_MAX_AGE": 5 * DAY,
    # The MAILERS alias (Django 6.1+) that replies and failure notices go
    # through, from the outbox or at once; before 6.1 they go through
    # EMAIL_BACKEND and this is ignored. Word to ADMINS takes Django's
    # default mailer, as Django's own error mail does.
    "MAIL_REPLY_MAILER": "default",
    # The reply outbox.
    # A reply that still cannot be sent this long after it was written is
    # marked failed and ADMINS are told (Postfix's maximal_queue_lifetime).
    "MAIL_OUTBOX_MAX_AGE": 5 * DAY,
    # How long a sender may hold a reply it claimed before another may take
    # it: longer than sending one message can take.
    "MAIL_OUTBOX_LEASE": 10 * 60,
    # Delay before the first retry of a failed send, doubled after each
    # failure up to the maximum.
    "MAIL_OUTBOX_RETRY_DELAY": 60,
    "MAIL_OUTBOX_MAX_RETRY_DELAY": 60 * 60,
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


def duration(name: str):
    """A duration setting as a timedelta; it may be given as one, or in seconds."""
    from datetime import timedelta

    value = getattr(settings, name)
    return value if isinstance(value, timedelta) else timedelta(seconds=value)
