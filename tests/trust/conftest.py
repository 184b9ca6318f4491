import pytest

from mailserver.test import Client

from . import views


@pytest.fixture(autouse=True)
def trust_settings(settings):
    """The trust tests' mailconf is the root one, so that reverse() reaches it."""
    settings.ROOT_MAILCONF = "tests.trust.mailconf"
    settings.MAIL_AUTHSERV_IDS = ["mx.bugs.example.com"]
    views.calls.clear()
    yield settings
    views.calls.clear()


@pytest.fixture
def client():
    return Client()
