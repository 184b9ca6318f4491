"""
The test client and the request factory, after Django's own.

``Client`` sends a message through the same dispatch core as the real
transports and hands back the :class:`~mailserver.handlers.Result`. Like
Django's client it re-raises, by default, an exception a view did not mean:
the dispatch core rightly defers a message when a view has a bug (4.3.0, so
the mail server retries), but in a test that deferral would hide the
traceback behind an outcome. ``RequestFactory`` builds the
:class:`~mailserver.request.EmailRequest` alone, to call a view directly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message
from typing import TYPE_CHECKING, Any

from ..envelope import Envelope
from .messages import DEFAULT_FROM_EMAIL, MESSAGE_FIELDS, build_message

if TYPE_CHECKING:  # pragma: no cover
    from ..handlers import Result
    from ..request import EmailRequest

ENVELOPE_FIELDS = frozenset(field.name for field in dataclasses.fields(Envelope))


@contextmanager
def keep_connections() -> Iterator[None]:
    """
    As Django's test client does: the database connections belong to the
    test, which may hold them in a transaction, so the signals a message
    starts and ends with do not close them meanwhile.
    """
    from ..signals import close_old_connections, message_finished, message_started

    message_started.disconnect(close_old_connections)
    message_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        message_started.connect(close_old_connections)
        message_finished.connect(close_old_connections)


class RequestFactory:
    """
    Builds requests as the transports do, without dispatching them::

        factory = RequestFactory(sender="ann@example.org")
        request = factory.message(recipient="help@example.com", subject="Hi", text="...")
        response = views.help(request)

    The keyword arguments of the factory are envelope defaults for every
    message (``sender``, ``client_address``, ...). No middleware runs:
    ``request.user`` is not set, and ``request.resolver_match`` only with
    ``resolve=True``.
    """

    def __init__(self, mailconf: str | None = None, **defaults: Any):
        _check_names(defaults, ENVELOPE_FIELDS)
        self.mailconf = mailconf
        self.defaults = defaults

    def message(
        self,
        message: bytes | str | Message | None = None,
        recipient: str = "",
        sender: str | None = None,
        *,
        resolve: bool = False,
        **fields: Any,
    ) -> EmailRequest:
        """
        An :class:`~mailserver.request.EmailRequest` for ``recipient``. The
        message is ``message`` (bytes, text or an ``email`` message) or,
        without one, what :func:`~mailserver.test.build_message` makes of
        the keyword arguments it knows; the others are envelope values.
        ``resolve=True`` resolves the recipient with the mailconf and sets
        ``request.resolver_match``, as dispatch does before calling the view
        (it raises ``RecipientNotFound`` when no pattern matches).
        """
        from ..request import EmailRequest

        raw, envelope = self._prepare(message, recipient, sender, fields)
        request = EmailRequest(raw, envelope)
        if resolve:
            from ..resolvers import get_resolver

            request.resolver_match = get_resolver(self.mailconf).resolve(str(request.address))
        return request

    def _prepare(
        self,
        message: bytes | str | Message | None,
        recipient: str,
        sender: str | None,
        fields: dict[str, Any],
    ) -> tuple[bytes, Envelope]:
        """The raw message and its envelope, from what a test gave."""
        _check_names(fields, ENVELOPE_FIELDS | MESSAGE_FIELDS)
        envelope = {name: fields.pop(name) for name in list(fields) if name in ENVELOPE_FIELDS}
        values = {"transport": "test", "sender": DEFAULT_FROM_EMAIL, **self.defaults, **envelope}
        if sender is not None:
            values["sender"] = sender
        if message is None:
            # The headers agree with the envelope unless the test says otherwise.
            if values["sender"]:
                fields.setdefault("from_email", values["sender"])
            if recipient:
                fields.setdefault("to", recipient)
            raw = build_message(**fields)
        elif fields:
            raise TypeError(
                f"Give a message or its fields ({', '.join(sorted(fields))}), not both."
            )
        elif isinstance(message, Message):
            raw = message.as_bytes()
        elif isinstance(message, str):
            raw = message.encode("utf-8")
        else:
            raw = bytes(message)
        return raw, Envelope(recipient=recipient, **values)


class Client(RequestFactory):
    """
    Sends a message through the dispatch core and returns the ``Result``.
    Replies land in ``django.core.mail.outbox`` with the test e-mail backend::

        result = Client().send(recipient="help@example.com", subject="Hi", text="...")
        assert result.outcome is Outcome.DELIVERED

    An exception a view raises that names no outcome (a bug: dispatch would
    defer the message with 4.3.0) is raised again from ``send()``. With
    ``raise_request_exception=False`` the Result comes back as the mail
    server would see it, the exception in ``result.exception``. Exceptions
    that name an outcome (``RecipientNotFound``, ``PermissionDenied`` and
    the other ``MailException``s; Django's ``Http404`` and
    ``PermissionDenied``) are never raised: they are the outcome.
    """

    def __init__(
        self,
        mailconf: str | None = None,
        raise_request_exception: bool = True,
        **defaults: Any,
    ):
        super().__init__(mailconf, **defaults)
        self.raise_request_exception = raise_request_exception
        self.exception: BaseException | None = None

    def store_exception(self, *, exception: BaseException, **kwargs: Any) -> None:
        """Keep the first exception dispatch reports: the cause, not what followed."""
        if self.exception is None:
            self.exception = exception

    def send(
        self,
        message: bytes | str | Message | None = None,
        recipient: str = "",
        sender: str | None = None,
        **fields: Any,
    ) -> Result:
        """
        Dispatch ``message`` (bytes, text or an ``email`` message), or the
        message :func:`~mailserver.test.build_message` makes of the keyword
        arguments it knows, to ``recipient``. The other keyword arguments
        are envelope values; those not given come from the Client's own
        keyword arguments, then defaults: the sender is ``sender@example.com``.
        """
        from ..handlers import dispatch
        from ..signals import got_message_exception

        raw, envelope = self._prepare(message, recipient, sender, fields)
        self.exception = None
        uid = f"mail-client-exception-{id(self)}"
        got_message_exception.connect(self.store_exception, dispatch_uid=uid)
        try:
            with keep_connections(), _commit_hooks_of_a_test():
                result = dispatch(raw, envelope, mailconf=self.mailconf)
        finally:
            got_message_exception.disconnect(dispatch_uid=uid)
        exception, self.exception = self.exception, None
        if exception is not None:
            if result.exception is None:
                result.exception = exception
            if self.raise_request_exception and not names_an_outcome(exception):
                raise exception
        return result


def names_an_outcome(exception: BaseException) -> bool:
    """Whether ``exception`` stands for an outcome rather than a bug."""
    from django.core.exceptions import PermissionDenied
    from django.http import Http404

    from ..exceptions import MailException

    return isinstance(exception, (MailException, Http404, PermissionDenied))


def _check_names(given: dict[str, Any], known: frozenset[str]) -> None:
    unknown = sorted(set(given) - known)
    if unknown:
        raise TypeError(
            f"Unexpected keyword argument(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}."
        )


@contextmanager
def _commit_hooks_of_a_test():
    """
    With mailserver.store, replies are sent when the message's transaction
    commits. Inside a test's transaction (TestCase, pytest-django's ``db``)
    nothing commits, so what the commit would have run (sending the
    replies) runs when dispatch returns, as the real commit would have.
    """
    from django.db import connections

    from ..handlers import store_installed

    if not store_installed():
        yield
        return
    started = {c.alias: len(c.run_on_commit) for c in connections.all(initialized_only=True)}
    yield
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            continue  # it committed, and ran them itself
        start = started.get(connection.alias, 0)
        while len(connection.run_on_commit) > start:
            hooks = connection.run_on_commit[start:]
            del connection.run_on_commit[start:]
            for _savepoints, hook, *_robust in hooks:
                hook()
