"""
The dispatch core: one message, for one recipient, through the middleware
chain to a view, and back as a :class:`Result`.

Every transport (django-mailpipe, ``readmail``, the LMTP server, the test
client) calls :func:`dispatch` and translates what it returns; nothing here
exits, prints or speaks a protocol. The handler is modelled on Django's
``BaseHandler``: the middleware chain is built once, each layer wrapped so
that an exception becomes a response before the next layer out sees it.
"""

from __future__ import annotations

import logging
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, TypeAlias

from asgiref.sync import async_to_sync, iscoroutinefunction
from django.core.exceptions import ImproperlyConfigured as DjangoImproperlyConfigured
from django.core.exceptions import MiddlewareNotUsed
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.signals import setting_changed
from django.db import transaction
from django.http import Http404
from django.utils.module_loading import import_string

from . import signals
from .addresses import check_recipient, check_sender
from .autoreply import answers, prepare_answer, send_failure_notice
from .conf import settings
from .deprecation import RemovedInMailserver02Warning
from .envelope import Envelope
from .exceptions import (
    ImproperlyConfigured,
    MailException,
    MalformedMessage,
    RecipientNotFound,
)
from .limits import check_size, check_structure
from .mime import is_blank, message_size, parse_message
from .request import EmailRequest
from .resolvers import get_resolver
from .response import (
    EmailForbiddenResponse,
    EmailNotFoundResponse,
    EmailOutcomeResponse,
    EmailResponse,
)
from .status import Outcome

# A message as transports hand it over: bytes, or a binary file holding them
# (a spool, so that a large message is never held in memory whole).
Raw: TypeAlias = "bytes | IO[bytes]"

logger = logging.getLogger("mailserver.request")
reply_logger = logging.getLogger("mailserver.replies")


@dataclass
class Result:
    """What became of one message for one recipient."""

    outcome: Outcome
    # The text of the status line when the view or the exception chose one;
    # the outcome's default text otherwise.
    status_text: str | None = None
    request: EmailRequest | None = None
    response: EmailResponse | None = None
    recipient: str = ""
    reply_sent: bool = False
    # Why the view's reply was not sent (RFC 3834, unsafe headers), or None.
    reply_suppressed: str | None = None
    notice_sent: bool = False
    exception: BaseException | None = field(default=None, repr=False)

    @property
    def route(self) -> str:
        match = self.request.resolver_match if self.request is not None else None
        return match.view_name if match else ""

    @property
    def exit_code(self) -> int:
        return self.outcome.exit_code

    @property
    def text(self) -> str | None:
        """Deprecated spelling of :attr:`status_text`."""
        warnings.warn(
            "Result.text is deprecated: use Result.status_text (request.text is the body).",
            RemovedInMailserver02Warning,
            stacklevel=2,
        )
        return self.status_text

    def reply(self) -> str:
        return self.outcome.reply(self.status_text)

    def dsn_line(self) -> str:
        return self.outcome.dsn_line(self.status_text)


def response_for_exception(
    request: EmailRequest | None, exc: BaseException
) -> EmailOutcomeResponse:
    """
    Turn an exception into the response its outcome stands for, as Django
    turns Http404 into a 404 and PermissionDenied into a 403: Django's
    shortcuts mean the same in a mail view (``get_object_or_404()``: no such
    mailbox, 5.1.1; ``PermissionDenied``: sender not allowed, 5.7.1), with
    or without any middleware.

    Any other exception is a bug on our side, ObjectDoesNotExist included
    (a view's own lookup failed, not the sender's address): the message is
    deferred, never bounced, and the error is reported the way Django
    reports a 500. Django's ImproperlyConfigured defers as misconfigured.
    """
    if isinstance(exc, MailException):
        response = EmailOutcomeResponse(str(exc), exc.outcome)
    elif isinstance(exc, Http404):
        response = EmailNotFoundResponse(f"<{getattr(request, 'recipient', '')}>: no such mailbox")
    elif isinstance(exc, DjangoPermissionDenied):
        response = EmailForbiddenResponse(str(exc) or None)
    else:
        handle_uncaught_exception(request, exc)
        if isinstance(exc, DjangoImproperlyConfigured):
            response = EmailOutcomeResponse(outcome=Outcome.MISCONFIGURED)
        else:
            response = EmailOutcomeResponse(outcome=Outcome.TEMPORARY_FAILURE)
    response.exception = exc
    return response


def handle_uncaught_exception(request: EmailRequest | None, exc: BaseException) -> None:
    logger.error(
        "Deferred the message to %s: %s: %s",
        getattr(request, "recipient", "?"),
        type(exc).__name__,
        exc,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    signals.got_message_exception.send(sender=MailHandler, request=request, exception=exc)
    from django.conf import settings as django_settings

    if not django_settings.DEBUG and django_settings.ADMINS:
        from .mailers import mail_admins

        try:
            mail_admins(
                f"Mail to {getattr(request, 'recipient', '?')} deferred: {type(exc).__name__}",
                "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
            )
        except Exception:
            logger.exception("Could not mail the error to ADMINS")


def convert_exception_to_response(get_response):
    def inner(request):
        try:
            return get_response(request)
        except Exception as exc:
            return response_for_exception(request, exc)

    return inner


class MailHandler:
    """Runs the middleware chain around resolving and calling the view."""

    def __init__(self, mailconf: str | None = None):
        self.mailconf = mailconf
        self._view_middleware: list = []
        self._exception_middleware: list = []
        self._middleware_chain: Callable[[EmailRequest], EmailResponse] | None = None
        self.load_middleware()

    def load_middleware(self) -> None:
        """
        Build the chain from MAIL_MIDDLEWARE, innermost first, as Django's
        BaseHandler does: a factory may refuse with MiddlewareNotUsed and is
        left out; one that returns None is a configuration error. Nothing is
        kept unless the whole chain is built.
        """
        view_middleware: list = []
        exception_middleware: list = []
        handler = convert_exception_to_response(self._get_response)
        for path in reversed(settings.MAIL_MIDDLEWARE):
            factory = import_string(path)
            try:
                mw = factory(handler)
            except MiddlewareNotUsed as exc:
                if str(exc):
                    logger.debug("MiddlewareNotUsed(%r): %s", path, exc)
                else:
                    logger.debug("MiddlewareNotUsed: %r", path)
                continue
            if mw is None:
                raise DjangoImproperlyConfigured(f"Middleware factory {path} returned None.")
            if hasattr(mw, "process_view"):
                view_middleware.insert(0, mw.process_view)
            if hasattr(mw, "process_exception"):
                exception_middleware.append(mw.process_exception)
            handler = convert_exception_to_response(mw)
        self._view_middleware = view_middleware
        self._exception_middleware = exception_middleware
        self._middleware_chain = handler

    def get_response(self, request: EmailRequest) -> EmailResponse:
        assert self._middleware_chain is not None, "load_middleware() first"
        return self._middleware_chain(request)

    def resolve(self, request: EmailRequest):
        """
        The route of the request's recipient, set as ``request.resolver_match``;
        RecipientNotFound without one, BadAddressSignature for a signed route
        whose signature does not hold. Also what the store's queued mode asks
        before it takes a message whose view runs later.
        """
        try:
            match = get_resolver(self.mailconf).resolve(str(request.address))
        except RecipientNotFound as exc:
            # Name the address as the sender wrote it, not the base the
            # patterns saw.
            raise RecipientNotFound(address=request.recipient, tried=exc.tried) from None
        request.resolver_match = match
        if match.signed:
            # Before any view or view middleware: a forged, altered, expired
            # or misbound reply address is refused with 5.7.1 (the same
            # check runmailserver makes at RCPT time, plus the binding).
            from .signing import verify

            request.signature = match.signature = verify(match, request.address, request)
        return match

    def _get_response(self, request: EmailRequest) -> EmailResponse:
        match = self.resolve(request)
        callback, args, kwargs = match.func, match.args, match.kwargs
        response = None
        for process_view in self._view_middleware:
            response = process_view(request, callback, args, kwargs)
            if response is not None:
                break
        if response is None:
            try:
                response = self.call_view(callback, request, args, kwargs)
            except Exception as exc:
                response = self.process_exception_by_middleware(exc, request)
                if response is None:
                    raise
        if not isinstance(response, EmailResponse):
            name = getattr(callback, "__qualname__", repr(callback))
            if response is None:
                raise ValueError(
                    f"The mail view {callback.__module__}.{name} didn't return a response. "
                    "It returned None instead."
                )
            raise ValueError(
                f"The mail view {callback.__module__}.{name} returned {type(response).__name__}, "
                "not an EmailResponse."
            )
        return response

    @staticmethod
    def call_view(callback, request, args, kwargs):
        # asgiref's test, as Django's: it also sees views marked with
        # markcoroutinefunction() and async callable objects.
        if iscoroutinefunction(callback):
            return async_to_sync(callback)(request, *args, **kwargs)
        return callback(request, *args, **kwargs)

    def process_exception_by_middleware(self, exc, request):
        for process_exception in self._exception_middleware:
            response = process_exception(request, exc)
            if response is not None:
                return response
        return None


_handler: dict[Any, MailHandler] = {}


def get_handler(mailconf: str | None = None) -> MailHandler:
    """
    The handler is built once per process, as Django builds its own, and
    built again after a setting changes (see :func:`reset_handler`).
    """
    handler = _handler.get(mailconf)
    if handler is None:
        handler = _handler[mailconf] = MailHandler(mailconf)
    return handler


def reset_handler(**kwargs) -> None:
    """
    Forget the built handlers. Connected to Django's ``setting_changed``,
    which ``override_settings`` and pytest-django's ``settings`` send: the
    next message builds its chain from the settings then in force. Any
    setting, not only MAIL_MIDDLEWARE: a middleware may read others when it
    is built (and refuse with MiddlewareNotUsed). Only tests change
    settings, and building the chain is cheap.
    """
    _handler.clear()


setting_changed.connect(reset_handler, dispatch_uid="mailserver.handlers.reset_handler")


def send_message(message) -> None:
    """How mail leaves without the store: at once, through the reply mailer."""
    from .mailers import send

    send(message)


def send_reply(response: EmailResponse, request: EmailRequest, send=send_message) -> str | None:
    """Send the view's reply (through ``send``); or say why it was held back."""
    reason = prepare_answer(response, request) if answers(response, request) else None
    if reason is None:
        try:
            # Building the message refuses a header with a line break or an
            # address it cannot encode: hostile input ends here, cleanly.
            response.message()
        except ValueError as exc:
            reason = f"unsafe reply: {exc}"
    if reason is not None:
        reply_logger.info("Reply to <%s> not sent: %s", request.recipient, reason)
        return reason
    send(response)
    return None


def build_request(raw: Raw, envelope: Envelope) -> EmailRequest:
    """
    The request for one recipient. What is wrong with the message or its
    envelope is the sender's fault and raises as the outcome it stands for.
    """
    check_size(message_size(raw))
    if is_blank(raw):
        raise MalformedMessage("empty message")
    check_sender(envelope.sender)
    try:
        message = parse_message(raw)
        check_structure(message)
    except RecursionError as exc:
        raise MalformedMessage("MIME parts nested too deep to parse") from exc
    request = EmailRequest(raw, envelope, message)
    if not request.recipient:
        raise ImproperlyConfigured(no_recipient_text())
    check_recipient(request.recipient)
    return request


def no_recipient_text() -> str:
    """What to do when neither the transport nor the headers named a recipient."""
    headers = settings.MAIL_RECIPIENT_HEADERS
    where = (
        f"nor in the headers {', '.join(headers)} (MAIL_RECIPIENT_HEADERS)"
        if headers
        else "and MAIL_RECIPIENT_HEADERS names no header to read one from"
    )
    return f"no recipient: none given (pass --recipient) {where}"


def store_installed() -> bool:
    """Whether mailserver.store is in INSTALLED_APPS: asked per message, so tests may toggle it."""
    from django.apps import apps

    return apps.is_installed("mailserver.store")


def dispatch(raw: Raw, envelope: Envelope, *, mailconf: str | None = None) -> Result:
    """
    Handle ``raw`` (bytes, or a binary file holding them) for the one
    recipient of ``envelope`` and say what became of it. Never raises for
    anything a message or a view can do: a failure on our side is a
    temporary failure, so the mail server retries.

    With ``mailserver.store`` installed, the store takes the message first
    (durably, once per recipient and content) and runs :func:`handle_message`
    inside the transaction that records its outcome; see mailserver/store/.
    """
    signals.message_started.send(sender=MailHandler, envelope=envelope)
    try:
        if store_installed():
            from .store.handler import handle_stored

            result = handle_stored(raw, envelope, mailconf=mailconf)
        else:
            result = handle_message(raw, envelope, mailconf=mailconf)
    finally:
        signals.message_finished.send(sender=MailHandler)
    signals.message_handled.send(sender=MailHandler, request=result.request, result=result)
    return result


def handle_message(
    raw: Raw,
    envelope: Envelope,
    *,
    mailconf: str | None = None,
    atomic: bool | None = None,
    send=send_message,
) -> Result:
    """
    Everything :func:`dispatch` does between its signals: the request, the
    view (in a transaction when ``atomic``, by default MAIL_ATOMIC_REQUESTS),
    the reply and the failure notice, both handed to ``send``.
    """
    request = None
    try:
        request = build_request(raw, envelope)
        signals.message_received.send(sender=MailHandler, request=request)
        handler = get_handler(mailconf)
        if settings.MAIL_ATOMIC_REQUESTS if atomic is None else atomic:
            with transaction.atomic():
                response = handler.get_response(request)
                if not response.outcome.is_success:
                    transaction.set_rollback(True)
        else:
            response = handler.get_response(request)
        result = Result(
            response.outcome, response.status_text, request, response, request.recipient
        )
        if response.sends_reply:
            # After the view and its transaction: a reply must not announce
            # what a rollback has undone.
            result.reply_suppressed = send_reply(response, request, send)
            result.reply_sent = result.reply_suppressed is None
    except Exception as exc:
        response = response_for_exception(request, exc)
        result = Result(
            response.outcome,
            response.status_text,
            request,
            None,
            getattr(request, "recipient", envelope.recipient),
            exception=exc,
        )
    if result.outcome.is_permanent and request is not None:
        result.notice_sent = send_failure_notice(request, result, send)
    return result
