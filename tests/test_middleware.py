"""
The middleware chain and what the handler makes of Django's exceptions:
Http404 and PermissionDenied mean what they mean in Django, with or without
middleware; ObjectDoesNotExist is our bug; Django middleware works on mail.
"""

import logging
import warnings

import pytest
from asgiref.sync import markcoroutinefunction
from django.core import mail
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.test import override_settings
from django.utils.deprecation import MiddlewareMixin

from mailserver import EmailIgnoreResponse, Outcome, signals
from mailserver.handlers import MailHandler
from mailserver.mailbox import mailbox
from mailserver.test import Client
from tests.mailapp.models import Ticket

pytestmark = pytest.mark.django_db

MESSAGE = b"From: Ann <ann@example.org>\nSubject: Printer\n\nIt is on fire.\n"


def send(recipient, raw=MESSAGE, client=None):
    """As the MTA sees it: a view's bug is a deferral here, not an exception."""
    client = client or Client(raise_request_exception=False)
    return client.send(raw, recipient=recipient, sender="ann@example.org")


# Django's exceptions, mapped by the handler itself -------------------------


@override_settings(MAIL_MIDDLEWARE=[])
def test_get_object_or_404_is_an_unknown_recipient_without_any_middleware():
    result = send("99-reply@tickets.example.com")
    assert result.outcome is Outcome.UNKNOWN_RECIPIENT
    assert result.dsn_line() == "5.1.1 <99-reply@tickets.example.com>: no such mailbox"
    ticket = Ticket.objects.create(subject="x")
    assert send(f"{ticket.pk}-reply@tickets.example.com").outcome is Outcome.IGNORED


@override_settings(MAIL_MIDDLEWARE=[])
def test_djangos_permission_denied_is_5_7_1_without_any_middleware():
    result = send("staff@example.com")
    assert result.outcome is Outcome.PERMISSION_DENIED and result.exit_code == 77
    assert result.dsn_line() == "5.7.1 <ann@example.org>: staff only"


@pytest.mark.parametrize(
    "middleware", [[], ["mailserver.middleware.CommonMiddleware"]], ids=["none", "common"]
)
def test_a_failed_lookup_in_a_view_defers_and_is_reported(middleware, settings, caplog):
    # Not "no such mailbox": the view's own data is missing, which is ours to fix.
    settings.MAIL_MIDDLEWARE = middleware
    seen = []

    def on_exception(sender, request, exception, **kwargs):
        seen.append(type(exception))

    signals.got_message_exception.connect(on_exception)
    try:
        with caplog.at_level(logging.ERROR, logger="mailserver.request"):
            result = send("config@example.com")
    finally:
        signals.got_message_exception.disconnect(on_exception)
    assert result.outcome is Outcome.TEMPORARY_FAILURE and result.exit_code == 75
    assert result.dsn_line() == "4.3.0 temporary failure, try again later"
    assert seen == [Ticket.DoesNotExist]
    [record] = [r for r in caplog.records if r.name == "mailserver.request"]
    assert record.exc_info[0] is Ticket.DoesNotExist
    [admin_mail] = mail.outbox
    assert "DoesNotExist" in admin_mail.subject


class Rescuer(MiddlewareMixin):
    """process_exception sees Django's exceptions before the handler maps them."""

    def process_exception(self, request, exception):
        if request.recipient.startswith("99-"):
            return EmailIgnoreResponse()
        return None


@override_settings(MAIL_MIDDLEWARE=["tests.test_middleware.Rescuer"])
def test_middleware_sees_http404_first():
    assert send("99-reply@tickets.example.com").outcome is Outcome.IGNORED
    assert send("98-reply@tickets.example.com").outcome is Outcome.UNKNOWN_RECIPIENT


# Loading the chain ----------------------------------------------------------


class Unused:
    def __init__(self, get_response):
        raise MiddlewareNotUsed("not in this deployment")


class UnusedSilently:
    def __init__(self, get_response):
        raise MiddlewareNotUsed


def returns_none(get_response):
    return None


class Stamp(MiddlewareMixin):
    """Old-style Django middleware: process_request and process_response."""

    def process_request(self, request):
        request.stamped = True
        if request.subject == "short-circuit":
            response = EmailIgnoreResponse()
            response.seen = "short-circuited"
            return response
        return None

    def process_response(self, request, response):
        response.stamp = (getattr(request, "stamped", False), response.outcome)
        return response


def test_middleware_not_used_is_left_out_and_logged(settings, caplog):
    settings.MAIL_MIDDLEWARE = [
        "tests.test_middleware.Unused",
        "tests.test_middleware.UnusedSilently",
        "tests.test_middleware.Stamp",
    ]
    with caplog.at_level(logging.DEBUG, logger="mailserver.request"):
        result = send("onedest@bugs.example.com")
    assert result.outcome is Outcome.DELIVERED
    assert result.response.stamp == (True, Outcome.DELIVERED)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert "MiddlewareNotUsed('tests.test_middleware.Unused'): not in this deployment" in messages
    assert "MiddlewareNotUsed: 'tests.test_middleware.UnusedSilently'" in messages


def test_a_factory_returning_none_is_improperly_configured(settings, caplog):
    settings.MAIL_MIDDLEWARE = ["tests.test_middleware.returns_none"]
    with pytest.raises(ImproperlyConfigured, match=r"^Middleware factory .*returns_none returned"):
        MailHandler()
    with caplog.at_level(logging.ERROR, logger="mailserver.request"):
        result = send("onedest@bugs.example.com")
    # Our configuration, so the message waits for it to be fixed.
    assert result.outcome is Outcome.MISCONFIGURED and result.exit_code == 75
    [record] = [r for r in caplog.records if r.name == "mailserver.request"]
    assert record.exc_info[0] is ImproperlyConfigured


def test_django_middleware_hooks_run_on_mail(settings):
    settings.MAIL_MIDDLEWARE = ["tests.test_middleware.Stamp"]
    result = send("refuse@example.com")
    assert result.response.stamp == (True, Outcome.REJECTED)
    # A view returning None is our bug; the outer layers still get a response.
    result = send("none@example.com")
    assert result.outcome is Outcome.TEMPORARY_FAILURE
    assert result.response.stamp == (True, Outcome.TEMPORARY_FAILURE)
    raw = MESSAGE.replace(b"Subject: Printer", b"Subject: short-circuit")
    result = send("broken@example.com", raw=raw)  # the view is never reached
    assert result.outcome is Outcome.IGNORED and result.response.seen == "short-circuited"
    assert result.response.stamp == (True, Outcome.IGNORED)


def test_sender_authentication_is_django_middleware(settings):
    from mailserver import middleware
    from mailserver.auth import SenderAuthenticationMiddleware

    assert middleware.MiddlewareMixin is MiddlewareMixin
    assert issubclass(SenderAuthenticationMiddleware, MiddlewareMixin)
    settings.MAIL_MIDDLEWARE = ["mailserver.auth.SenderAuthenticationMiddleware"]
    assert send("members@example.com").request.user.is_anonymous


def test_common_middleware_takes_itself_out(settings, caplog):
    settings.MAIL_MIDDLEWARE = ["mailserver.middleware.CommonMiddleware"]
    with caplog.at_level(logging.DEBUG, logger="mailserver.request"):
        assert send("onedest@bugs.example.com").outcome is Outcome.DELIVERED
    assert any("CommonMiddleware" in r.getMessage() for r in caplog.records)
    # A subclass with hooks of its own stays in the chain.
    settings.MAIL_MIDDLEWARE = ["tests.test_middleware.CommonRescuer"]
    assert send("99-reply@tickets.example.com").outcome is Outcome.IGNORED


def _common_rescuer():
    from mailserver.middleware import CommonMiddleware

    class CommonRescuer(CommonMiddleware):
        process_exception = Rescuer.process_exception

    return CommonRescuer


CommonRescuer = _common_rescuer()


# Views ----------------------------------------------------------------------


async def _async_view(request):
    response = EmailIgnoreResponse()
    response.seen = "awaited"
    return response


def _marked_view(request):
    # A sync callable that returns a coroutine and says so, as decorators
    # wrapping async views do (asgiref's markcoroutinefunction).
    return _async_view(request)


markcoroutinefunction(_marked_view)

VIEWS = [
    mailbox(r"^async@x\.org$", _async_view),
    mailbox(r"^marked@x\.org$", _marked_view),
]


@pytest.fixture
def views_client():
    import sys
    import types

    module = types.ModuleType("tests._middleware_views")
    module.mailpatterns = VIEWS
    sys.modules[module.__name__] = module
    yield Client(mailconf=module.__name__, raise_request_exception=False)
    del sys.modules[module.__name__]


def test_async_views_are_awaited(views_client):
    with warnings.catch_warnings():
        # No deprecated coroutine test (asyncio.iscoroutinefunction, 3.14).
        warnings.simplefilter("error", DeprecationWarning)
        for address in ("async@x.org", "marked@x.org"):
            result = send(address, client=views_client)
            assert result.outcome is Outcome.IGNORED, result.exception
            assert result.response.seen == "awaited"


# Settings changed in a test take effect ------------------------------------


class Tag(MiddlewareMixin):
    def process_response(self, request, response):
        response.tagged = True
        return response


def test_override_settings_rebuilds_the_chain():
    assert not hasattr(send("onedest@bugs.example.com").response, "tagged")  # chain built
    with override_settings(MAIL_MIDDLEWARE=["tests.test_middleware.Tag"]):
        assert send("onedest@bugs.example.com").response.tagged
    assert not hasattr(send("onedest@bugs.example.com").response, "tagged")


def test_override_settings_switches_the_mailconf():
    from mailserver import resolve, reverse

    assert send("broken@example.com").outcome is Outcome.TEMPORARY_FAILURE  # resolver built
    assert send("onedest").outcome is Outcome.UNKNOWN_RECIPIENT
    with override_settings(ROOT_MAILCONF="tests.mailapp.original"):
        assert send("onedest").outcome is Outcome.DELIVERED
        assert send("broken@example.com").outcome is Outcome.UNKNOWN_RECIPIENT
        assert resolve("onedest").func.__name__ == "reply"
    assert reverse("new-ticket") == "new@tickets.example.com"


def test_the_pytest_plugin_follows_override_settings(mail_client):
    with override_settings(MAIL_MIDDLEWARE=["tests.test_middleware.Tag"]):
        result = mail_client.send(MESSAGE, recipient="onedest@bugs.example.com")
        assert result.response.tagged


def test_a_mailconf_module_replaced_under_the_same_name_is_read_again():
    # What a test that builds its mailconf on the fly does, test after test.
    import sys
    import types

    name = "tests._replaced_mailconf"
    try:
        for address in ("first@x.org", "second@x.org"):
            module = types.ModuleType(name)
            module.mailpatterns = [mailbox(rf"^{address}$", _async_view)]
            sys.modules[name] = module
            with override_settings(ROOT_MAILCONF=name):
                assert send(address).outcome is Outcome.IGNORED
    finally:
        sys.modules.pop(name, None)
