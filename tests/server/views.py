"""Views of the server tests. ``seen`` records what in-process views received."""

import os
import threading

from django.db import connection

from mailserver import EmailDeferResponse, EmailIgnoreResponse, EmailRejectResponse
from mailserver.exceptions import TemporaryFailure

# (thread name, request) for each call of record(); read by in-process tests.
seen: list = []
# Set by a test to let slow() return; a real process waits SLOW_SECONDS.
release = threading.Event()


def ok(request):
    return EmailIgnoreResponse()


def record(request):
    seen.append((threading.current_thread().name, request))
    return EmailIgnoreResponse()


def record_n(request, n):
    return record(request)


def broken(request):
    raise RuntimeError("the view is broken")


def defer(request):
    raise TemporaryFailure("database busy")


def reject(request):
    return EmailRejectResponse("no thanks")


def slow(request):
    release.wait(float(os.environ.get("SLOW_SECONDS", "5")))
    return EmailIgnoreResponse()


async def async_ok(request):
    seen.append((threading.current_thread().name, request))
    return EmailIgnoreResponse()


def uses_database(request):
    # Run by one worker thread twice in a row: the first message's
    # connection must have been closed after it, as after an HTTP request.
    left_open = connection.connection is not None
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    if left_open:
        return EmailDeferResponse("the previous message left its connection open")
    return EmailIgnoreResponse()
