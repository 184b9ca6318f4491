"""Views run in a bounded pool of worker threads; the event loop never waits for one."""

import gc
import logging
import select
import time
import weakref

import pytest

from mailserver.signals import message_handled

from . import views
from .conftest import MESSAGE, Client


def hello(address) -> Client:
    client = Client(address)
    assert client.reply().startswith("220")
    client.command("LHLO mta.example")
    return client


def start_data(client: Client, recipient: str) -> None:
    """Send a whole message without waiting for its reply."""
    client.command("MAIL FROM:<ann@example.org>")
    assert client.command(f"RCPT TO:<{recipient}>").startswith("250")
    assert client.command("DATA").startswith("354")
    client.data(MESSAGE)


def test_a_slow_view_does_not_stall_other_sessions(start_server):
    server = start_server()
    slow, other = hello(server.address), hello(server.address)
    start_data(slow, "slow@example.com")
    started = time.monotonic()
    assert other.deliver(["record@example.com"])[-1].startswith("250 2.0.0")
    assert time.monotonic() - started < 2
    views.release.set()
    assert slow.reply().startswith("250 2.0.0")


def test_the_pool_is_bounded(start_server):
    server = start_server(workers=1)
    slow, other = hello(server.address), hello(server.address)
    start_data(slow, "slow@example.com")
    time.sleep(0.2)  # the one worker is now inside the slow view
    start_data(other, "record@example.com")
    readable, _, _ = select.select([other.sock], [], [], 0.5)
    assert readable == []  # no reply: its view waits for the one worker
    assert views.seen == []
    views.release.set()
    assert slow.reply().startswith("250 2.0.0")
    assert other.reply().startswith("250 2.0.0")
    assert len(views.seen) == 1


def test_an_async_view_runs_on_the_servers_event_loop(lmtp):
    assert lmtp.deliver(["async@example.com"])[-1] == "250 2.0.0 accepted, no reply"
    ((thread_name, request),) = views.seen
    # Not in a new event loop in a thread of its own: in the server's loop,
    # while the worker thread waits for it.
    assert thread_name == "test-mailserver"
    assert request.recipient == "async@example.com"


def test_sync_views_run_in_the_worker_threads(lmtp):
    lmtp.deliver(["record@example.com"])
    ((thread_name, _),) = views.seen
    assert thread_name.startswith("mailserver_")


def test_the_idle_timeout_closes_silent_clients_but_never_cuts_a_view(start_server):
    server = start_server(timeout=0.5)
    silent = hello(server.address)
    slow = hello(server.address)
    start_data(slow, "slow@example.com")
    time.sleep(1.2)  # the view runs for longer than the timeout
    views.release.set()
    assert slow.reply().startswith("250 2.0.0")
    assert silent.reply().startswith("421 4.4.2 ")  # Postfix's words: timeout exceeded
    assert silent.reply() == "<closed>"


@pytest.fixture
def requests_handled():
    """Weak references to the request of each message dispatched, in order."""
    refs: list[weakref.ref] = []

    def keep(request, **kwargs):
        refs.append(weakref.ref(request))

    message_handled.connect(keep)
    yield refs
    message_handled.disconnect(keep)


@pytest.fixture
def no_cyclic_collector():
    """Only reference counting frees memory meanwhile: what a cycle holds, stays."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def test_each_request_is_freed_by_reference_counting(
    lmtp, requests_handled, no_cyclic_collector, monkeypatch
):
    # A request that a reference cycle holds waits for the cyclic collector,
    # and meanwhile a transaction's requests pile up (see test_abuse's memory
    # test). Two such cycles were made: on Python 3.10, by the lookups of
    # database connections the worker thread never used (mailserver.signals);
    # on every Python, by a view's exception, whose traceback reaches the
    # frames that held its result (mailserver.server.delivery). Not logged
    # here: pytest keeps each log record, and the traceback in it.
    monkeypatch.setattr(logging.getLogger("mailserver.request"), "disabled", True)
    replies = lmtp.deliver(["ok@example.com", "defer@example.com", "raise@example.com"])
    assert replies[-3:] == [
        "250 2.0.0 accepted, no reply",
        "451 4.3.0 database busy",
        "451 4.3.0 temporary failure, try again later",
    ]
    assert len(requests_handled) == 3
    assert [ref() for ref in requests_handled] == [None, None, None]
