from __future__ import annotations

from email.message import Message

from django.db import close_old_connections

from ..envelope import Envelope
from ..handlers import Result, dispatch
from ..signals import message_finished, message_started


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
        sender: str | None = None,
        **envelope,
    ) -> Result:
        """
        Envelope values not given here come from the Client's own keyword
        arguments, then defaults: the sender is ``sender@example.com``.
        """
        if isinstance(message, Message):
            raw = message.as_bytes()
        elif isinstance(message, str):
            raw = message.encode("utf-8")
        else:
            raw = bytes(message)
        values = {"transport": "test", "sender": "sender@example.com", **self.defaults, **envelope}
        if sender is not None:
            values["sender"] = sender
        # As Django's test client does: connections belong to the test, which
        # may hold them in a transaction, so they are not closed per message.
        message_started.disconnect(close_old_connections)
        message_finished.disconnect(close_old_connections)
        try:
            return dispatch(
                raw, Envelope(recipient=recipient, **values), mailconf=self.mailconf
            )
        finally:
            message_started.connect(close_old_connections)
            message_finished.connect(close_old_connections)
