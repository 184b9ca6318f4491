"""Who may connect, how many at once, SMTP mode, and draining on shutdown."""

import smtplib
import time

from . import views
from .conftest import MESSAGE, Client


def test_tcp_clients_outside_the_allowed_networks_are_refused(start_server):
    server = start_server(bind="127.0.0.1:0", allowed_networks=["192.0.2.0/24"])
    client = Client(server.address)
    assert client.reply().startswith("554 5.7.1 ")
    assert client.reply() == "<closed>"


def test_loopback_is_allowed_by_default(start_server):
    server = start_server(bind="127.0.0.1:0")
    client = Client(server.address)
    assert client.reply().startswith("220 ")
    client.command("LHLO mta.example")
    assert client.deliver(["record@example.com"])[-1].startswith("250 2.0.0")


def test_sessions_over_the_limit_get_421(start_server):
    server = start_server(max_sessions=1)
    first = Client(server.address)
    assert first.reply().startswith("220 ")
    second = Client(server.address)
    assert second.reply().startswith("421 4.3.2 ")
    first.close()
    time.sleep(0.1)
    third = Client(server.address)
    assert third.reply().startswith("220 ")


def test_smtp_mode_takes_one_recipient_per_transaction(start_server):
    server = start_server(bind="127.0.0.1:0", lmtp=False)
    client = Client(server.address)
    assert "ESMTP" in client.reply()
    assert client.command("LHLO mta.example").startswith("500")
    assert "SIZE" in client.command("EHLO mta.example")
    replies = client.deliver(["nobody@example.com", "record@example.com", "defer@example.com"])
    assert [r[:9] for r in replies] == [
        "250 2.1.0",
        "550 5.1.1",
        "250 2.1.5",
        "452 4.5.3",
        "354 End d",
        "250 2.0.0",
    ]
    # The deferred recipient, in a transaction of its own, gets its own reply.
    assert client.deliver(["defer@example.com"])[-1] == "451 4.3.0 database busy"


def test_smtp_mode_as_smtplib_sees_it(start_server):
    server = start_server(bind="127.0.0.1:0", lmtp=False)
    with smtplib.SMTP(server.address.host, server.address.port) as smtp:
        refused = smtp.sendmail(
            "ann@example.org", ["record@example.com", "ok@example.com"], MESSAGE
        )
        assert list(refused) == ["ok@example.com"]
        assert refused["ok@example.com"][0] == 452
        assert smtp.sendmail("ann@example.org", ["ok@example.com"], MESSAGE) == {}
    assert [request.recipient for _, request in views.seen] == ["record@example.com"]


def test_shutdown_finishes_the_message_in_flight_and_turns_new_sessions_away(start_server):
    server = start_server()
    idle = Client(server.address)
    idle.reply()
    idle.command("LHLO mta.example")
    busy = Client(server.address)
    busy.reply()
    busy.command("LHLO mta.example")
    busy.command("MAIL FROM:<ann@example.org>")
    busy.command("RCPT TO:<slow@example.com>")
    busy.command("DATA")
    busy.data(MESSAGE)
    time.sleep(0.2)
    server.server.shutdown_threadsafe()
    assert idle.reply().startswith("421 4.3.2 ")
    assert idle.reply() == "<closed>"
    late = Client(server.address)
    assert late.reply().startswith("421 4.3.2 ")
    assert server.is_alive()
    views.release.set()
    assert busy.reply() == "250 2.0.0 accepted, no reply"
    assert busy.reply().startswith("421 4.3.2 ")
    server.join(5)
    assert not server.is_alive()
