"""
The store's admin. Runs with tests/admin_settings.py (the store, the admin,
a test database in a file): ``pytest --ds=tests.admin_settings tests/admin``.
"""

import pytest

from mailserver.test import Client

MESSAGE = (
    b"From: Ann <ann@example.org>\n"
    b"To: help@desk.example.com\n"
    b"Subject: Printer on fire\n"
    b"Message-ID: <admin1@example.org>\n"
    b"\n"
    b"Help!\n"
)


@pytest.fixture(autouse=True)
def store(settings, tmp_path):
    """The store's files and the sent replies under the test's own directory."""
    settings.MAIL_STORE_ROOT = str(tmp_path / "store")
    settings.STORE_TEST_SENT = str(tmp_path / "sent")
    settings.ADMIN_TEST_FIXED = False
    return tmp_path / "store"


def deliver(message=MESSAGE, recipient="help@desk.example.com", **envelope):
    """A message through the dispatch core, as the MTA would see it."""
    envelope.setdefault("sender", "ann@example.org")
    return Client(raise_request_exception=False).send(message, recipient=recipient, **envelope)


@pytest.fixture
def staff(django_user_model):
    """Makes a staff user with the given permissions of mailserver_store (codenames)."""
    from django.contrib.auth.models import Permission

    def make(*codenames, username="support"):
        user = django_user_model.objects.create_user(
            username, f"{username}@example.com", "secret", is_staff=True
        )
        user.user_permissions.set(
            Permission.objects.filter(
                content_type__app_label="mailserver_store", codename__in=codenames
            )
        )
        return user

    return make
