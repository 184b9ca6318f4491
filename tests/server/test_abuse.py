"""
runmailserver against a hostile or broken client (issue 13): each test runs
the server as a real process on a real unix socket, and talks to it as the
client in question would.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from .conftest import MESSAGE, Client, mailpipe_command, wait_for_socket

MIB = 1024 * 1024


class Server:
    """A runmailserver process with its settings from the environment; its log in a file."""

    def __init__(self, env: dict, directory: str, *args: str, **settings):
        self.path = f"{directory}/lmtp.sock"
        self.log = Path(directory) / "server.log"
        env = {**env, **{name: str(value) for name, value in settings.items()}}
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "django",
                    "runmailserver",
                    "--bind",
                    f"unix:{self.path}",
                    *args,
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        wait_for_socket(self.path, self.process)

    def client(self) -> Client:
        client = Client(f"unix:{self.path}", timeout=30)
        assert client.reply().startswith("220 ")
        assert client.command("LHLO mta.example").startswith("250-")
        return client

    def vm(self, field: str) -> int:
        """A /proc status field of the server process, in bytes."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(field)

    def stop(self, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def text(self) -> str:
        return self.log.read_text(errors="backslashreplace")


@pytest.fixture
def serve(server_env):
    """serve(*args, **settings) -> a running Server; stopped after the test."""
    servers = []

    def start(*args, **settings) -> Server:
        directory = tempfile.mkdtemp(prefix="ms-")
        server = Server(server_env, directory, *args, **settings)
        servers.append((server, directory))
        return server

    yield start
    for server, directory in servers:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(10)
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


def wait_reply(client: Client, seconds: float) -> str | None:
    """The next reply if one comes within ``seconds``, else None."""
    readable, _, _ = select.select([client.sock], [], [], seconds)
    return client.reply() if readable else None


# 1. Memory: one message at a time, whatever the recipients ------------------------


def test_memory_is_bounded_by_one_message_whatever_the_recipients(serve):
    # Before: every recipient's parsed request was kept to the end of the
    # transaction, and the data held in memory, so the peak grew with
    # recipients x size (60 x 512 KiB: about 60 MiB here). Now the data is
    # spooled to disk and each request dropped after its view.
    server = serve("--workers", "1", MAILSERVER_TEST_MAX_SIZE=4 * MIB)
    client = server.client()
    assert client.deliver(["ok@example.com"])[-1].startswith("250 ")  # warm: Django loaded
    base = server.vm("VmHWM")
    line = b"A line of an ordinary message body, long enough to look like real text.\n"
    message = b"Subject: big\n\n" + line * (MIB // 2 // len(line))
    recipients = [f"ok+{i}@example.com" for i in range(60)]
    replies = client.deliver(recipients, message)
    assert replies[-60:] == ["250 2.0.0 accepted, no reply"] * 60
    growth = server.vm("VmHWM") - base
    # Parsing holds about three times the message at its peak; a few MiB
    # more for what reading and the allocator keep.
    assert growth < 3 * len(message) + 4 * MIB, f"peak grew by {growth / MIB:.1f} MiB"


# 2. Time and count limits on a session; a drain deadline ---------------------------


def test_a_client_trickling_data_runs_out_of_time(serve):
    # Any line used to reset the idle timeout, so "x." every few tenths of a
    # second kept a DATA open for ever. Now the client has the timeout (2 s
    # here) and earns time only at MAIL_SERVER_MIN_DATA_RATE bytes a second.
    server = serve(MAIL_SERVER_TIMEOUT=2, MAIL_SERVER_MIN_DATA_RATE=500)
    client = server.client()
    client.command("MAIL FROM:<ann@example.org>")
    client.command("RCPT TO:<ok@example.com>")
    assert client.command("DATA").startswith("354")
    reply = None
    for _ in range(40):  # 12 s of trickling at most
        try:
            client.send(b"x.\r\n")
        except OSError:
            break
        reply = wait_reply(client, 0.3)
        if reply is not None:
            break
    assert reply is not None and reply.startswith("421 4.4.2 "), reply
    assert "timeout exceeded" in reply
    assert client.reply() == "<closed>"
    assert "outcome=" not in server.text()  # nothing was delivered


def test_noop_and_rset_are_counted_then_the_session_is_closed(serve):
    server = serve(MAIL_SERVER_JUNK_COMMAND_LIMIT=5, MAIL_SERVER_HARD_ERROR_LIMIT=3)
    client = server.client()
    replies = [client.command("NOOP" if i % 2 else "RSET") for i in range(8)]
    # 5 free ones, then each counts as an error; the third error closes.
    assert replies == ["250 2.0.0 OK"] * 8
    assert client.reply().startswith("421 4.7.0 ")
    assert client.reply() == "<closed>"


def test_unknown_commands_count_as_errors(serve):
    server = serve(MAIL_SERVER_HARD_ERROR_LIMIT=3)
    client = server.client()
    # Sent all at once: what follows the goodbye gets no reply, and the
    # message after it is never taken.
    client.send(
        b"BOGUS\r\n" * 3 + b"NOOP\r\nMAIL FROM:<a@example.org>\r\n"
        b"RCPT TO:<ok@example.com>\r\nDATA\r\nSubject: late\r\n\r\nx\r\n.\r\n"
    )
    for _ in range(3):
        assert client.reply().startswith("500 5.5.2 ")
    assert client.reply().startswith("421 4.7.0 ")
    assert client.reply() == "<closed>"
    assert server.stop() == 0
    assert "outcome=" not in server.text()


def test_the_junk_count_starts_again_after_a_message(serve):
    server = serve(MAIL_SERVER_JUNK_COMMAND_LIMIT=3, MAIL_SERVER_HARD_ERROR_LIMIT=2)
    client = server.client()
    for _ in range(3):
        for _ in range(4):  # one over the limit: one error each round
            assert client.command("NOOP") == "250 2.0.0 OK"
        assert client.deliver(["ok@example.com"])[-1] == "250 2.0.0 accepted, no reply"
    assert client.command("QUIT").startswith("221 2.0.0")


def test_a_session_has_a_time_limit(serve):
    # A client that keeps busy (a NOOP, a message now and then) used to keep
    # its session for ever; it now ends after MAIL_SERVER_SESSION_LIMIT.
    server = serve(MAIL_SERVER_SESSION_LIMIT=2, MAIL_SERVER_TIMEOUT=30)
    client = server.client()
    reply = None
    for _ in range(40):
        assert client.deliver(["ok@example.com"])[-1].startswith("250 ")
        reply = wait_reply(client, 0.3)
        if reply is not None:
            break
    assert reply is not None and reply.startswith("421 4.4.2 "), reply
    assert "session time limit" in reply
    assert client.reply() == "<closed>"


def test_the_drain_has_a_deadline(serve):
    # A client stuck in DATA used to keep a draining server alive until its
    # idle timeout; past MAIL_SERVER_DRAIN_TIMEOUT it is told 421 and the
    # process exits.
    server = serve(MAIL_SERVER_DRAIN_TIMEOUT=1)
    client = server.client()
    client.command("MAIL FROM:<ann@example.org>")
    client.command("RCPT TO:<ok@example.com>")
    assert client.command("DATA").startswith("354")
    client.send(b"Subject: slow\r\n\r\n")
    server.process.send_signal(signal.SIGTERM)
    assert wait_reply(client, 15).startswith("421 4.3.2 ")
    assert server.process.wait(15) == 0
    assert "Drain deadline (1 s) passed: closing 1 session(s) with 421" in server.text()


def test_the_drain_deadline_does_not_wait_for_a_view(serve):
    server = serve(MAIL_SERVER_DRAIN_TIMEOUT=1, SLOW_SECONDS=60)
    client = server.client()
    client.command("MAIL FROM:<ann@example.org>")
    client.command("RCPT TO:<slow@example.com>")
    assert client.command("DATA").startswith("354")
    client.data(MESSAGE)
    time.sleep(0.3)  # the view is running
    server.process.send_signal(signal.SIGTERM)
    assert wait_reply(client, 15).startswith("421 4.3.2 ")
    assert server.process.wait(15) == 1  # a view was abandoned


def test_the_drain_deadline_does_not_wait_for_a_view_whose_client_left(serve):
    server = serve(MAIL_SERVER_DRAIN_TIMEOUT=1, SLOW_SECONDS=60)
    client = server.client()
    client.command("MAIL FROM:<ann@example.org>")
    client.command("RCPT TO:<slow@example.com>")
    assert client.command("DATA").startswith("354")
    client.data(MESSAGE)
    time.sleep(0.3)  # the view is running
    client.close()  # no session left; one view still running
    time.sleep(0.3)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(15) == 1


# 3. A deadline per message -----------------------------------------------------------


def test_a_view_past_the_deadline_is_deferred_and_its_thread_replaced(serve):
    server = serve("--workers", "1", MAIL_SERVER_DEADLINE=1, SLOW_SECONDS=60)
    client = server.client()
    replies = client.deliver(["ok@example.com", "slow@example.com", "ok+2@example.com"])
    # The first was delivered; the one whose view hangs and the one after it
    # (never started) are deferred, so the MTA retries them.
    assert replies[-3] == "250 2.0.0 accepted, no reply"
    assert replies[-2].startswith("451 4.3.0 ") and "1 seconds" in replies[-2]
    assert replies[-1] == replies[-2]
    # The one worker is stuck in the view: a replacement takes the next message.
    assert server.client().deliver(["ok@example.com"])[-1] == "250 2.0.0 accepted, no reply"
    log = server.text()
    assert "A view ran past the deadline of 1 s for <slow@example.com>" in log
    assert "in slow" in log  # the stuck thread's stack
    assert "recipient=<ok+2@example.com> route=- outcome=temporary_failure status=4.3.0" in log


def test_when_every_thread_is_stuck_new_work_is_refused_with_421(serve):
    server = serve("--workers", "1", MAIL_SERVER_DEADLINE=0.5, SLOW_SECONDS=60)
    client = server.client()
    # One worker, one replacement at most: two hung views use them up.
    for _ in range(2):
        assert client.deliver(["slow@example.com"])[-1].startswith("451 4.3.0 ")
    late = Client(f"unix:{server.path}")
    assert late.reply().startswith("421 4.3.2 ")
    client.command("MAIL FROM:<ann@example.org>")
    client.command("RCPT TO:<ok@example.com>")
    assert client.command("DATA").startswith("421 4.3.2 ")
    assert "no new message is accepted until one returns" in server.text()


# 4. Envelope addresses that are not UTF-8 --------------------------------------------


def test_invalid_utf8_in_an_address_is_refused_and_logged(serve):
    server = serve()
    client = server.client()
    client.send(b"MAIL FROM:<ann\xff@example.org>\r\n")
    assert client.reply().startswith("553 5.1.7 ")
    assert client.command("MAIL FROM:<ann@example.org>").startswith("250 ")
    client.send(b"RCPT TO:<dump@example.com\xff>\r\n")
    reply = client.reply()
    assert reply.startswith("553 5.1.3 <dump@example.com\\") and reply.isascii()
    assert server.stop() == 0
    log = server.text()
    assert "recipient=<dump@example.com\\xff> route=- outcome=bad_recipient " in log
    assert "Logging error" not in log


@pytest.mark.parametrize("how", ["argv", "exim"])
def test_the_pipe_bounces_invalid_utf8_in_an_address(server_env, tmp_path, how):
    log = tmp_path / "pipe.log"
    env = {k.encode(): v.encode() for k, v in server_env.items()}
    env[b"MAILSERVER_TEST_LOG"] = str(log).encode()
    argv = [a.encode() for a in mailpipe_command()]
    if how == "argv":
        argv += [b"--sender", b"ann@example.org", b"--recipient", b"dump@example.com\xff"]
    else:
        # As Exim sets them: the address, and its parts.
        env.update(
            {
                b"SENDER": b"ann@example.org",
                b"RECIPIENT": b"dump\xff@example.com",
                b"LOCAL_PART": b"dump\xff",
                b"DOMAIN": b"example.com",
            }
        )
    result = subprocess.run(argv, input=MESSAGE, capture_output=True, env=env, timeout=60)
    # The sender's fault: a bounce (65, 5.1.3), not a deferral the MTA retries for ever.
    assert (result.returncode, result.stdout[:6]) == (65, b"5.1.3 "), result
    (line,) = log.read_text().splitlines()
    assert "recipient=<dump" in line and "\\xff" in line and "outcome=bad_recipient " in line


# 5. Nothing forged in the log --------------------------------------------------------


def test_a_client_cannot_write_a_line_of_its_own_into_the_log(serve):
    server = serve()
    client = server.client()
    forged = "transport=lmtp queue_id=FORGED sender=<x> recipient=<victim@example.com>"
    # xtext: +0A is a line feed once decoded.
    assert client.command("XFORWARD IDENT=abc+0A" + forged.replace(" ", "+20")).startswith(
        "501 5.5.4 "
    )
    assert client.command("XFORWARD IDENT=abc+0D+0Adef").startswith("501 5.5.4 ")
    client.send(b"MAIL FROM:<ann\r" + forged.encode() + b"@example.org>\r\n")
    assert client.reply()[:2] == "50"  # the spaces already make it a syntax error
    client.send(b"MAIL FROM:<ann\rforged@example.org>\r\n")
    assert client.reply().startswith("553 5.1.7 ")
    client.command("MAIL FROM:<ann@example.org>")
    client.send(b"RCPT TO:<nobody\x1b\r@example.com>\r\n")
    assert client.reply().startswith("553 5.1.3 ")
    client.send(b"FAKE\x1b[2J\rLINE\r\n")  # aiosmtpd logs the unknown word
    assert client.reply().startswith("500 5.5.2 ")
    assert client.command("XFORWARD IDENT=4Good").startswith("503 ")  # inside a transaction
    client.command("RSET")
    assert client.command("XFORWARD IDENT=4Good ADDR=192.0.2.1") == "250 2.0.0 OK"
    assert client.deliver(["ok@example.com"])[-1].startswith("250 ")
    assert server.stop() == 0
    log = server.text()
    assert "queue_id=4Good sender=<ann@example.org> recipient=<ok@example.com>" in log
    assert "recipient=<nobody\\x1b\\r@example.com>" in log
    assert "unrecognised: FAKE\\x1b[2J\\rLINE" in log  # aiosmtpd's own line, escaped
    for line in log.splitlines():
        assert not line.startswith("transport="), line  # ours begin with the time
        assert "\x1b" not in line and "\r" not in line


# 6. A live unix socket is never taken over ------------------------------------------


def _stale_socket(path: str, uid: int) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(path)
    sock.close()  # nobody listens: connecting is refused
    os.chown(path, uid, -1)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to give a file to another user")
def test_a_stale_socket_of_another_user_is_left_alone(server_env, socket_dir):
    path = f"{socket_dir}/lmtp.sock"
    _stale_socket(path, 65534)
    result = subprocess.run(
        [sys.executable, "-m", "django", "runmailserver", "--bind", f"unix:{path}"],
        env=server_env,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert b"stale socket of another user (uid 65534)" in result.stderr
    assert os.stat(path).st_uid == 65534


def test_a_stale_socket_of_our_own_is_replaced(server_env, socket_dir):
    path = f"{socket_dir}/lmtp.sock"
    _stale_socket(path, os.geteuid())
    directory = socket_dir
    server = Server(server_env, directory)
    assert server.client().deliver(["ok@example.com"])[-1].startswith("250 ")
    assert server.stop() == 0
    assert not os.path.exists(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to drop CAP_DAC_OVERRIDE")
def test_a_live_socket_it_cannot_probe_is_never_taken_over(server_env, socket_dir):
    # The second server gets EACCES connecting to the first one's socket:
    # that says nothing about whether a server listens, so it must refuse
    # to start rather than remove the socket (which asyncio would do).
    first = Server(server_env, socket_dir, "--socket-mode", "000")
    setpriv = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]
    result = subprocess.run(
        [*setpriv, sys.executable, "-m", "django", "runmailserver", "--bind", f"unix:{first.path}"],
        env=server_env,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 1, result
    assert b"cannot tell whether a server is listening on it" in result.stderr
    assert b"Permission denied" in result.stderr
    os.chmod(first.path, 0o660)
    assert first.client().deliver(["ok@example.com"])[-1].startswith("250 ")
    assert first.stop() == 0


# 7. Signals as soon as the server says it serves -------------------------------------


def _start_and_signal(server_env, socket_dir, signum) -> subprocess.Popen:
    path = f"{socket_dir}/lmtp.sock"
    process = subprocess.Popen(
        [sys.executable, "-m", "django", "runmailserver", "--bind", f"unix:{path}"],
        env=server_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    line = process.stdout.readline()
    process.send_signal(signum)  # the moment the start line is out
    assert line.startswith(b"Serving LMTP on "), line
    return process


@pytest.mark.parametrize("attempt", range(3))
def test_sighup_right_after_the_start_line_is_not_fatal(server_env, socket_dir, attempt):
    process = _start_and_signal(server_env, socket_dir, signal.SIGHUP)
    client = Client(f"unix:{socket_dir}/lmtp.sock")
    assert client.reply().startswith("220 ")
    client.close()
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) == 0
    assert b"SIGHUP: nothing reloaded" in process.stderr.read()


@pytest.mark.parametrize("attempt", range(3))
def test_sigterm_right_after_the_start_line_drains(server_env, socket_dir, attempt):
    process = _start_and_signal(server_env, socket_dir, signal.SIGTERM)
    assert process.wait(20) == 0  # drained and stopped, not killed by the signal
    assert not os.path.exists(f"{socket_dir}/lmtp.sock")


# 8. Replies ----------------------------------------------------------------------------

ENHANCED = re.compile(r"^[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3} ")


def test_every_reply_has_an_enhanced_status_code(serve):
    server = serve()
    client = Client(f"unix:{server.path}")
    assert client.reply().startswith("220 ")  # the greeting has none (RFC 2034)
    replies = [
        client.command("MAIL FROM:<ann@example.org>"),  # before LHLO
        client.command("LHLO"),
        client.command("HELO mta.example"),  # not LMTP
    ]
    assert replies[0] == "503 5.5.1 Error: send LHLO first"
    assert client.command("LHLO mta.example").startswith("250-")  # none here either
    replies += [
        client.command("RCPT TO:<ok@example.com>"),  # before MAIL
        client.command("DATA"),
        client.command("NOOP"),
        client.command("RSET"),
        client.command("VRFY <ok@example.com>"),
        client.command("HELP"),
        client.command("BOGUS"),
        client.command("MAIL FROM:<ann@example.org> " + "X" * 600),
        client.command("MAIL"),
        client.command("MAIL FROM:<ann@example.org>"),
        client.command("MAIL FROM:<ann@example.org>"),  # nested
    ]
    client.send(b"RCPT TO:<dump\x00@example.com>\r\n")
    replies.append(client.reply())
    replies.append(client.command("QUIT"))
    for reply in replies:
        assert ENHANCED.match(reply), reply
        assert "\x00" not in reply
    assert replies[3] == "503 5.5.1 Error: need MAIL command"
    assert replies[-2].startswith("553 5.1.3 <dump\\x00@example.com>")


def test_a_bare_lf_ending_the_data_is_answered_at_once(serve):
    server = serve()
    client = server.client()
    client.command("MAIL FROM:<ann@example.org>")
    client.command("RCPT TO:<ok@example.com>")
    assert client.command("DATA").startswith("354")
    client.send(b"Subject: unix line ends\n\nbody\n.\n")
    # Not the idle timeout (300 s): at once.
    reply = wait_reply(client, 10)
    assert reply is not None and reply.startswith("521 5.5.2 "), reply
