"""
``manage.py runmailserver`` and ``django-mailpipe --via`` as real processes,
talking over a real unix socket, with real signals.
"""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from .conftest import MESSAGE, Client, mailpipe_command, wait_for_socket


def runmailserver(socket_path, env, *args, log=None):
    command = [sys.executable, "-m", "django", "runmailserver", "--bind", f"unix:{socket_path}"]
    process = subprocess.Popen(
        [*command, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log or subprocess.PIPE,
    )
    wait_for_socket(socket_path, process)
    return process


def stop(process, timeout=10):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(timeout)


@pytest.fixture(scope="module")
def server(server_env, tmp_path_factory):
    """One runmailserver for the module, with one worker thread; its log in a file."""
    import tempfile

    directory = tempfile.mkdtemp(prefix="ms-")
    path = f"{directory}/lmtp.sock"
    log_path = tmp_path_factory.mktemp("serverlog") / "server.log"
    with open(log_path, "wb") as log:
        process = runmailserver(path, server_env, "--workers", "1", log=log)
    yield {"path": path, "process": process, "log": log_path, "env": server_env}
    assert stop(process) == 0
    os.rmdir(directory)


def relay(server, *args, message=MESSAGE, env=None, via=None):
    return subprocess.run(
        [*mailpipe_command(), "--via", via or f"unix:{server['path']}", *args],
        input=message,
        capture_output=True,
        env=env or server["env"],
        timeout=30,
    )


@pytest.mark.parametrize(
    "recipients, status, output",
    [
        (["ok@example.com"], 0, ""),
        (["async@example.com"], 0, ""),
        (["nobody@example.com"], 67, "5.1.1 <nobody@example.com>: no such mailbox"),
        (["raise@example.com"], 75, "4.3.0 temporary failure, try again later"),
        (["defer@example.com"], 75, "4.3.0 database busy"),
        (["reject@example.com"], 69, "5.7.0 no thanks"),
        # Several recipients: a deferral wins, then the first bounce.
        (["ok@example.com", "nobody@example.com"], 67, "5.1.1 <nobody@example.com>"),
        (["nobody@example.com", "ok@example.com", "defer@example.com"], 75, "4.3.0 database"),
    ],
)
def test_relay_exit_status_and_line_come_from_the_servers_replies(
    server, recipients, status, output
):
    result = relay(server, "--sender", "ann@example.org", *recipients)
    assert result.returncode == status
    assert result.stdout.decode().startswith(output) and result.stderr == b""
    # One line, without the line break that Postfix would fold into a space.
    assert b"\n" not in result.stdout and (status == 0) == (result.stdout == b"")


def test_relay_too_big_is_refused_by_the_servers_size(server):
    result = relay(
        server,
        "--sender",
        "a@example.org",
        "ok@example.com",
        message=MESSAGE + b"x" * (1024 * 1024),
    )
    assert (result.returncode, result.stdout[:6]) == (65, b"5.3.4 ")


def test_relay_passes_queue_id_sender_and_exims_environment(server):
    env = {
        **server["env"],
        "SENDER": "",
        "LOCAL_PART": "ok",
        "DOMAIN": "example.com",
        "MESSAGE_ID": "1vXyZ-000Abc-00",
    }
    assert relay(server, env=env).returncode == 0
    assert (
        relay(
            server, "--sender", "ann@example.org", "--queue-id", "4QueueId9", "ok@example.com"
        ).returncode
        == 0
    )
    log = server["log"].read_text()
    assert "queue_id=1vXyZ-000Abc-00 sender=<> recipient=<ok@example.com> route=ok" in log
    assert "queue_id=4QueueId9 sender=<ann@example.org> recipient=<ok@example.com>" in log


def test_relay_without_a_sender_or_recipient_defers(server):
    result = relay(server, "ok@example.com")
    assert (result.returncode, result.stdout[:6]) == (75, b"4.3.5 ")
    result = relay(server, "--sender", "a@example.org")
    assert (result.returncode, result.stdout[:6]) == (75, b"4.3.5 ")


def test_relay_defers_when_the_server_is_unreachable(server, tmp_path):
    result = relay(
        server, "--sender", "a@example.org", "ok@example.com", via=f"unix:{tmp_path}/nothing.sock"
    )
    assert result.returncode == 75
    assert result.stdout.startswith(b"4.3.0 mail server at unix:")
    assert b"No such file or directory" in result.stdout
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    result = relay(server, "--sender", "a@example.org", "ok@example.com", via=f"127.0.0.1:{port}")
    assert (result.returncode, result.stdout[:6]) == (75, b"4.3.0 ")


def test_relay_gives_up_at_its_deadline(server):
    with socket.socket() as silent:  # accepts, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        started = time.monotonic()
        result = relay(
            server,
            "--sender",
            "a@example.org",
            "--deadline",
            "1",
            "ok@example.com",
            via=f"127.0.0.1:{silent.getsockname()[1]}",
        )
    assert time.monotonic() - started < 10
    assert (result.returncode, result.stdout[:6]) == (75, b"4.3.0 ")


def test_relay_loads_neither_django_nor_the_email_package(server, tmp_path):
    report = tmp_path / "modules"
    code = (
        "import atexit, sys\n"
        "def report():\n"
        f"    with open({str(report)!r}, 'w') as f:\n"
        "        f.write(' '.join(m for m in sys.modules if m.split('.')[0] in "
        "('django', 'email', 'asgiref')))\n"
        "atexit.register(report)\n"
        "from mailserver.pipe import main\n"
        "main()\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "--via",
            f"unix:{server['path']}",
            "--sender",
            "a@b.example",
            "ok@example.com",
        ],
        input=MESSAGE,
        capture_output=True,
        env=server["env"],
        timeout=30,
    )
    assert result.returncode == 0
    assert report.read_text() == ""


def test_database_connections_are_closed_after_each_message_in_the_worker(server):
    client = Client(f"unix:{server['path']}")
    client.reply()
    client.command("LHLO mta.example")
    # Both run in the server's one worker thread.
    assert client.deliver(["db@example.com"])[-1] == "250 2.0.0 accepted, no reply"
    assert client.deliver(["db@example.com"])[-1] == "250 2.0.0 accepted, no reply"
    client.close()


def test_the_server_advises_persistent_database_connections(server):
    # The tests' settings keep Django's CONN_MAX_AGE of 0.
    log = server["log"].read_text()
    assert "WARNING Database 'default' has CONN_MAX_AGE = 0" in log, log
    assert log.count("CONN_MAX_AGE = 0") == 1, log


def test_only_databases_connected_anew_for_each_message_are_named():
    from mailserver.server.server import short_lived_databases

    assert short_lived_databases(
        {
            "default": {"ENGINE": "django.db.backends.sqlite3", "CONN_MAX_AGE": 0},
            "kept": {"ENGINE": "django.db.backends.postgresql", "CONN_MAX_AGE": 600},
            "forever": {"ENGINE": "django.db.backends.postgresql", "CONN_MAX_AGE": None},
            "none": {"ENGINE": "django.db.backends.dummy", "CONN_MAX_AGE": 0},
            "unset": {"ENGINE": "django.db.backends.postgresql"},
        }
    ) == ["default", "unset"]


def test_sighup_reloads_nothing_and_keeps_serving(server):
    server["process"].send_signal(signal.SIGHUP)
    time.sleep(0.2)
    assert server["process"].poll() is None
    assert relay(server, "--sender", "a@example.org", "ok@example.com").returncode == 0
    assert "SIGHUP: nothing reloaded" in server["log"].read_text()


def test_a_second_server_will_not_take_over_a_live_socket(server):
    result = subprocess.run(
        [sys.executable, "-m", "django", "runmailserver", "--bind", f"unix:{server['path']}"],
        env=server["env"],
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert b"another server is listening" in result.stderr


def test_sigterm_lets_the_message_in_flight_finish(server_env, socket_dir):
    path = f"{socket_dir}/lmtp.sock"
    env = {**server_env, "SLOW_SECONDS": "1.5"}
    process = runmailserver(path, env)
    busy = Client(f"unix:{path}")
    busy.reply()
    busy.command("LHLO mta.example")
    busy.command("MAIL FROM:<ann@example.org>")
    busy.command("RCPT TO:<slow@example.com>")
    busy.command("DATA")
    busy.data(MESSAGE)
    time.sleep(0.3)  # the view is running
    process.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    late = Client(f"unix:{path}")
    assert late.reply().startswith("421 4.3.2 ")
    via = subprocess.run(
        [
            *mailpipe_command(),
            "--via",
            f"unix:{path}",
            "--sender",
            "a@example.org",
            "ok@example.com",
        ],
        input=MESSAGE,
        capture_output=True,
        timeout=30,
    )
    assert (via.returncode, via.stdout[:6]) == (75, b"4.3.2 ")
    assert process.poll() is None
    assert busy.reply() == "250 2.0.0 accepted, no reply"
    assert busy.reply().startswith("421 4.3.2 ")
    assert process.wait(10) == 0
    stderr = process.stderr.read().decode()
    assert "Shutting down: 1 message(s) in flight" in stderr
    assert "recipient=<slow@example.com> route=slow outcome=ignored status=2.0.0" in stderr
    assert not os.path.exists(path)


def test_a_second_sigterm_stops_at_once(server_env, socket_dir):
    path = f"{socket_dir}/lmtp.sock"
    process = runmailserver(path, {**server_env, "SLOW_SECONDS": "30"})
    busy = Client(f"unix:{path}")
    busy.reply()
    busy.command("LHLO mta.example")
    busy.command("MAIL FROM:<ann@example.org>")
    busy.command("RCPT TO:<slow@example.com>")
    busy.command("DATA")
    busy.data(MESSAGE)
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 1
    assert time.monotonic() - started < 5
    assert busy.reply() == "<closed>"  # no reply: the MTA retries


def test_the_start_line_is_printed_once(server_env, socket_dir):
    path = f"{socket_dir}/lmtp.sock"
    process = runmailserver(path, server_env)
    assert stop(process) == 0
    out = process.stdout.read().decode() + process.stderr.read().decode()
    assert out.count("Serving LMTP on ") == 1, out
    assert "SIGTERM to stop" in out
