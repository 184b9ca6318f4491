from __future__ import annotations

from contextlib import contextmanager
from email.message import Message

from django.db import close_old_connections, connections

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
            with _commit_hooks_of_a_test():
                return dispatch(
                    raw, Envelope(recipient=recipient, **values), mailconf=self.mailconf
                )
        finally:
            message_started.connect(close_old_connections)
            message_finished.connect(close_old_connections)


@contextmanager
def _commit_hooks_of_a_test():
    """
    With mailserver.store, replies are sent when the message's transaction
    commits. Inside a test's transaction (TestCase, pytest-django's ``db``)
    nothing commits, so what the commit would have run (sending the
    replies) runs when dispatch returns, as the real commit would have.
    """
    from ..handlers import store_installed

    if not store_installed():
        yield
        return
    started = {
        c.alias: len(c.run_on_commit) for c in connections.all(initialized_only=True)
    }
    try:
        yield
    finally:
        for connection in connections.all(initialized_only=True):
            if not connection.in_atomic_block:
                continue  # it committed, and ran them itself
            start = started.get(connection.alias, 0)
            while len(connection.run_on_commit) > start:
                hooks = connection.run_on_commit[start:]
                del connection.run_on_commit[start:]
                for _savepoints, hook, *_robust in hooks:
                    hook()
