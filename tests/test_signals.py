"""
The database housekeeping around each message (mailserver.signals), as a
worker thread of runmailserver sees it: its own connections, and only them.
That it closes them is tested through a real server process
(tests/server/test_process.py): an in-memory SQLite connection, as the test
database here is, is never closed.
"""

import gc
import threading
import weakref

from django.db import connections

from mailserver.signals import close_old_connections


def in_a_thread(function):
    """What ``function`` returns, called in a new thread, whose connections are closed after."""
    outcome: list = []

    def run():
        try:
            outcome.append(function())
        except BaseException as exc:  # raised again below, in the test
            outcome.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    (value,) = outcome
    if isinstance(value, BaseException):
        raise value
    return value


def test_no_connection_is_set_up_for_a_thread_that_used_none():
    def unused():
        close_old_connections()
        return connections.all(initialized_only=True)

    assert in_a_thread(unused) == []


def test_the_callers_frames_are_freed_by_reference_counting():
    # On Python 3.10, Django's connections.all(initialized_only=True) leaves
    # the frames that call it in a reference cycle when the thread has used
    # no connection: a message's request held there waits for the cyclic
    # collector (tests/server/test_workers.py sees it through the server).
    class Request:
        pass

    def housekeeping():
        request = Request()
        close_old_connections()
        return weakref.ref(request)

    gc.collect()
    gc.disable()
    try:
        request = in_a_thread(housekeeping)
    finally:
        gc.enable()
    assert request() is None
