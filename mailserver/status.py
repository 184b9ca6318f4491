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
from dataclasses import dataclass

# sysexits.h, only the codes the table uses.
EX_OK = 0
EX_DATAERR = 65
EX_NOUSER = 67
EX_UNAVAILABLE = 69
EX_TEMPFAIL = 75
EX_NOPERM = 77


@dataclass(frozen=True)
class Status:
    """One row of the table."""

    name: str
    smtp_code: int
    enhanced: str
    exit_code: int
    text: str

    @property
    def is_success(self) -> bool:
        return self.smtp_code < 400

    @property
    def is_temporary(self) -> bool:
        return 400 <= self.smtp_code < 500

    @property
    def is_permanent(self) -> bool:
        return self.smtp_code >= 500

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


class Outcome(enum.Enum):
    """What became of one message for one recipient."""

    DELIVERED = Status("delivered", 250, "2.0.0", EX_OK, "delivered")
    IGNORED = Status("ignored", 250, "2.0.0", EX_OK, "accepted, no reply")
    DISCARDED = Status("discarded", 250, "2.0.0", EX_OK, "accepted and discarded")
    # mailserver.store's queued processing: stored; its view runs later.
    QUEUED = Status("queued", 250, "2.0.0", EX_OK, "queued for processing")
    UNKNOWN_RECIPIENT = Status("unknown_recipient", 550, "5.1.1", EX_NOUSER, "no such mailbox")
    BAD_RECIPIENT = Status(
        "bad_recipient", 553, "5.1.3", EX_DATAERR, "bad recipient address syntax"
    )
    BAD_SENDER = Status("bad_sender", 553, "5.1.7", EX_DATAERR, "bad sender address syntax")
    PERMISSION_DENIED = Status("permission_denied", 550, "5.7.1", EX_NOPERM, "sender not allowed")
    REJECTED = Status("rejected", 554, "5.7.0", EX_UNAVAILABLE, "message refused")
    MALFORMED = Status("malformed", 554, "5.6.0", EX_DATAERR, "malformed message")
    TOO_BIG = Status("too_big", 552, "5.3.4", EX_DATAERR, "message too big")
    TEMPORARY_FAILURE = Status(
        "temporary_failure", 451, "4.3.0", EX_TEMPFAIL, "temporary failure, try again later"
    )
    MISCONFIGURED = Status(
        "misconfigured", 451, "4.3.5", EX_TEMPFAIL, "mail system misconfigured, try again later"
    )

    @property
    def status(self) -> Status:
        return self.value

    def __getattr__(self, name: str):
        # Outcome.TOO_BIG.enhanced rather than Outcome.TOO_BIG.value.enhanced.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.value, name)


def _one_line(text: str) -> str:
    # A reply line or a DSN line may never carry a line break: the MTA would
    # read the rest as a new reply, or fold it into garbage.
    return " ".join(str(text).split())
