"""
Mail settings for the tests on every Django they run on: ``MAILERS`` from
Django 6.1, ``EMAIL_BACKEND`` and the ``EMAIL_*`` options before. Django
6.1 deprecates the old names (and refuses them beside MAILERS), so a test
that changes where mail goes says it once, here, for both.
"""

import django

HAS_MAILERS = django.VERSION >= (6, 1)
LOCMEM = "django.core.mail.backends.locmem.EmailBackend"


def mail_settings(backend: str, **options) -> dict:
    """The settings that send mail through ``backend`` with ``options`` (host=, port=, ...)."""
    if HAS_MAILERS:
        return {"MAILERS": {"default": {"BACKEND": backend, "OPTIONS": options}}}
    return {"EMAIL_BACKEND": backend, **{f"EMAIL_{k.upper()}": v for k, v in options.items()}}


def use_backend(settings, backend: str, **options) -> None:
    """Send this test's mail through ``backend`` (``settings``: pytest-django's fixture)."""
    for name, value in mail_settings(backend, **options).items():
        setattr(settings, name, value)


def admins(*addresses: str) -> list:
    """ADMINS as this Django wants it: addresses from 6.0, (name, address) pairs before."""
    if django.VERSION >= (6, 0):
        return list(addresses)
    return [(address.partition("@")[0], address) for address in addresses]


class RecordingBackend:
    """A mailer that keeps what it is given, apart from Django's locmem outbox."""

    sent: list = []

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        RecordingBackend.sent.extend(messages)
        return len(messages)


class BrokenBackend:
    """A mailer whose server is down."""

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("smtp down")
