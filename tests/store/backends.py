"""A mail backend for real processes: one file per message sent, and faults on demand."""

import uuid
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend

from .mailers import pause


class EmailBackend(BaseEmailBackend):
    def send_messages(self, messages):
        if getattr(settings, "STORE_TEST_MAIL", "") == "fail":
            raise ConnectionRefusedError("the outgoing mail server is down")
        pause("send")
        directory = Path(settings.STORE_TEST_SENT)
        directory.mkdir(parents=True, exist_ok=True)
        for message in messages:
            data = message.message().as_bytes()
            (directory / f"{uuid.uuid4().hex}.eml").write_bytes(data)
        return len(messages)


class DownBackend(BaseEmailBackend):
    """The outgoing mail server is down."""

    def send_messages(self, messages):
        raise ConnectionRefusedError("the outgoing mail server is down")
