from __future__ import annotations

from email.message import Message

from ..envelope import Envelope
from ..handlers import Result, dispatch


class Client:
    """
    Sends a message through the same dispatch core as the real transports.
    Replies land in ``django.core.mail.outbox`` with the test e-mail backend.

    >>> result = Client().send(b"Subject: hi\\n\\nhello", recipient="help@example.com")
    >>> result.outcome, result.response
    """

    def __init__(self, mailconf: str | None = None, **defaults):
        self.mailconf = mailconf
        self.defaults = defaults

    def send(
        self,
        message: bytes | str | Message,
        recipient: str = "",
        sender: str | None = "sender@example.com",
        **envelope,
    ) -> Result:
        if isinstance(message, Message):
            raw = message.as_bytes()
        elif isinstance(message, str):
            raw = message.encode("utf-8")
        else:
            raw = bytes(message)
        values = {"transport": "test", **self.defaults, **envelope}
        return dispatch(
            raw, Envelope(sender=sender, recipient=recipient, **values), mailconf=self.mailconf
        )
