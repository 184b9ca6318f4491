"""
Views of the store tests: each writes a ticket (its committed work, which
the tests count) and most reply. Faults are injected through settings that
tests/store_settings.py reads from the environment of a real process.
"""

import os
import time
from pathlib import Path

from django.conf import settings

from mailserver import EmailIgnoreResponse, EmailResponse
from tests.mailapp.models import Ticket


def pause(point: str) -> None:
    """
    Stop here when the test asks to (STORE_TEST_PAUSE), saying so in the
    marker file first, until the gate file appears (for good if there is
    none): the test kills the process at this point, or lets it go on once
    another process has come.
    """
    if getattr(settings, "STORE_TEST_PAUSE", "") == point:
        Path(os.environ["MAILSERVER_TEST_MARKER"]).write_text(point)
        gate = os.environ.get("MAILSERVER_TEST_GATE")
        while not (gate and Path(gate).exists()):
            time.sleep(0.05)


def open_ticket(request):
    ticket = Ticket.objects.create(subject=request.subject)
    pause("view")
    return EmailResponse(
        subject=f"[#{ticket.pk}] {request.subject}",
        body=f"We opened ticket #{ticket.pk}.\n",
        to=request.sender,
        reply_to=[f"ticket-{ticket.pk}@desk.example.com"],
    )


def quiet_ticket(request):
    Ticket.objects.create(subject=request.subject)
    return EmailIgnoreResponse()


def flaky(request):
    """Fails on its first run for each message (Subject names the flag file)."""
    ticket = Ticket.objects.create(subject=request.subject)
    flag = Path(settings.STORE_TEST_FLAGS) / request.message_id.strip("<>")
    if not flag.exists():
        flag.write_text("failed once")
        raise RuntimeError("the view fails on its first run")
    return EmailResponse(subject=f"[#{ticket.pk}] {request.subject}", body="ok\n")
