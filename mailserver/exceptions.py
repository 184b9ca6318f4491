"""
Exceptions a view, a middleware or the app itself raises to end a message
with a given outcome. Each names its row of :mod:`mailserver.status`.
"""

from __future__ import annotations

from .status import Outcome


class MailException(Exception):
    """Base class: the outcome it stands for, and an optional short text."""

    outcome: Outcome = Outcome.TEMPORARY_FAILURE

    def __init__(self, text: str | None = None, *args):
        super().__init__(text, *args)
        self.status_text = text

    def __str__(self) -> str:
        return self.status_text or self.outcome.text


class RecipientNotFound(MailException):
    """No pattern matched the recipient address. Bounces with 5.1.1."""

    outcome = Outcome.UNKNOWN_RECIPIENT

    def __init__(self, text: str | None = None, *, address: str = "", tried=None):
        super().__init__(text)
        self.address = address
        # The patterns that were tried, as lists from the root down, the way
        # Resolver404 reports them.
        self.tried = tried or []

    def __str__(self) -> str:
        if self.status_text:
            return self.status_text
        return f"<{self.address}>: no such mailbox" if self.address else self.outcome.text


class BadRecipientAddress(MailException):
    """The envelope recipient is not a valid address. Bounces with 5.1.3."""

    outcome = Outcome.BAD_RECIPIENT


class BadSenderAddress(MailException):
    """The envelope sender is not a valid address. Bounces with 5.1.7."""

    outcome = Outcome.BAD_SENDER


class PermissionDenied(MailException):
    """The sender may not write to this address. Bounces with 5.7.1."""

    outcome = Outcome.PERMISSION_DENIED


class BadAddressSignature(PermissionDenied):
    """
    A signed route's token is missing, altered, expired or made for another
    sender. Bounces with 5.7.1, before any view runs.
    """


class MessageRejected(MailException):
    """The content is refused by policy. Bounces with 5.7.0."""

    outcome = Outcome.REJECTED


class MalformedMessage(MailException):
    """The message cannot be parsed or breaks a structure limit. Bounces with 5.6.0."""

    outcome = Outcome.MALFORMED


class MessageTooBig(MailException):
    """The message is over MAIL_MAX_MESSAGE_SIZE. Bounces with 5.3.4."""

    outcome = Outcome.TOO_BIG


class TemporaryFailure(MailException):
    """Try again later: the MTA keeps the message queued. Defers with 4.3.0."""

    outcome = Outcome.TEMPORARY_FAILURE


class ImproperlyConfigured(MailException):
    """Our configuration is broken; defer until it is fixed (4.3.5)."""

    outcome = Outcome.MISCONFIGURED


class Discard(MailException):
    """Accept the message and drop it silently."""

    outcome = Outcome.DISCARDED


class NoReverseMatch(Exception):
    """reverse() found no route, or the route cannot be turned back into an address."""
