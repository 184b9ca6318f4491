"""
The outcome table: the single place where an outcome gets its codes.

Every transport speaks a different language to the mail server (an exit
status for a pipe, a reply line for LMTP/SMTP) but they must all agree on
what happened. So each outcome is one row here, holding its SMTP reply code,
its RFC 3463 enhanced status code and the sysexits.h code a pipe exits with.
Nothing else in the code base invents a code: transports look them up here.

The exit codes are chosen for what Postfix's pipe(8) and Exim's pipe
transport *do* with them, not for their names: only 75 (EX_TEMPFAIL) defers
in both, so every failure on our side maps to 75; every other non-zero code
bounces the message to its sender.
"""

from __future__ import annotations

import enum

# sysexits.h, only the codes the table uses.
EX_OK = 0
EX_DATAERR = 65
EX_NOUSER = 67
EX_UNAVAILABLE = 69
EX_TEMPFAIL = 75
EX_NOPERM = 77


class Outcome(enum.Enum):
    """
    What became of one message for one recipient: one row of the table.

    Each member carries its codes as attributes, the way ``http.HTTPStatus``
    members carry their phrase: ``Outcome.TOO_BIG.enhanced == "5.3.4"``. The
    value is the row's name (``Outcome("too_big") is Outcome.TOO_BIG``), a
    plain string to log or store.
    """

    smtp_code: int
    enhanced: str
    exit_code: int
    text: str

    def __new__(cls, value: str, smtp_code: int, enhanced: str, exit_code: int, text: str):
        member = object.__new__(cls)
        member._value_ = value
        member.smtp_code = smtp_code
        member.enhanced = enhanced
        member.exit_code = exit_code
        member.text = text
        return member

    DELIVERED = ("delivered", 250, "2.0.0", EX_OK, "delivered")
    IGNORED = ("ignored", 250, "2.0.0", EX_OK, "accepted, no reply")
    DISCARDED = ("discarded", 250, "2.0.0", EX_OK, "accepted and discarded")
    # mailserver.store's queued processing: stored; its view runs later.
    QUEUED = ("queued", 250, "2.0.0", EX_OK, "queued for processing")
    UNKNOWN_RECIPIENT = ("unknown_recipient", 550, "5.1.1", EX_NOUSER, "no such mailbox")
    BAD_RECIPIENT = ("bad_recipient", 553, "5.1.3", EX_DATAERR, "bad recipient address syntax")
    BAD_SENDER = ("bad_sender", 553, "5.1.7", EX_DATAERR, "bad sender address syntax")
    PERMISSION_DENIED = ("permission_denied", 550, "5.7.1", EX_NOPERM, "sender not allowed")
    REJECTED = ("rejected", 554, "5.7.0", EX_UNAVAILABLE, "message refused")
    MALFORMED = ("malformed", 554, "5.6.0", EX_DATAERR, "malformed message")
    TOO_BIG = ("too_big", 552, "5.3.4", EX_DATAERR, "message too big")
    TEMPORARY_FAILURE = (
        "temporary_failure",
        451,
        "4.3.0",
        EX_TEMPFAIL,
        "temporary failure, try again later",
    )
    MISCONFIGURED = (
        "misconfigured",
        451,
        "4.3.5",
        EX_TEMPFAIL,
        "mail system misconfigured, try again later",
    )

    @property
    def is_success(self) -> bool:
        return self.smtp_code < 400

    @property
    def is_temporary(self) -> bool:
        return 400 <= self.smtp_code < 500

    @property
    def is_permanent(self) -> bool:
        return self.smtp_code >= 500

    @property
    def status(self) -> Outcome:
        """
        The row itself. Rows used to be separate objects reached through
        this; ``outcome.status.enhanced`` keeps working for code written then.
        """
        return self

    def reply(self, text: str | None = None) -> str:
        """The SMTP/LMTP reply line, without the line ending."""
        return f"{self.smtp_code} {self.enhanced} {_one_line(text or self.text)}"

    def dsn_line(self, text: str | None = None) -> str:
        """
        The line a pipe prints. Postfix's pipe(8) takes an enhanced status
        code at the very first byte of the command's output over the exit
        status, so the code and text land in its log and bounce as given.
        """
        return f"{self.enhanced} {_one_line(text or self.text)}"


def _one_line(text: str) -> str:
    # A reply line or a DSN line may never carry a line break: the MTA would
    # read the rest as a new reply, or fold it into garbage. What else would
    # reach a log or a bounce unseen (NUL, bidi overrides, lone surrogates,
    # say in a refused address quoted back) is shown as an escape instead.
    line = " ".join(str(text).split())
    if line.isprintable():
        return line
    return "".join(
        ch.encode("unicode_escape").decode("ascii") if _hidden(ch) else ch for ch in line
    )


def _hidden(ch: str) -> bool:
    import unicodedata

    return unicodedata.category(ch) in ("Cc", "Cf", "Cs")
