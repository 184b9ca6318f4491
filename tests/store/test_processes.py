"""
Exactly once, as the MTA sees it: django-mailpipe, manage.py and
runmailserver as real processes on a real database (SQLite, or PostgreSQL
with MAILSERVER_TEST_DATABASE=postgres), delivering again, at once, and
killed with SIGKILL before and after the commit.

What counts is committed work: tickets (one per run of the help desk's
view that committed) and reply files (one per message the mail backend
sent).
"""

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .conftest import POSTGRES

MESSAGE = b"""\
From: Ann <ann@example.org>
To: help@desk.example.com
Subject: Printer on fire
Date: Tue, 1 Dec 2026 10:00:00 +0000
Message-ID: <p1@example.org>

Help!
"""
HELP = "help@desk.example.com"
READMAIL = [sys.executable, "-m", "django", "readmail"]


def pipe_command(recipient=HELP, sender="ann@example.org"):
    return [sys.executable, "-m", "mailserver.pipe", "--sender", sender, "--recipient", recipient]


def pipe(env, message=MESSAGE, recipient=HELP, **extra):
    proc = subprocess.run(
        pipe_command(recipient),
        input=message,
        capture_output=True,
        env={**env, **extra},
        timeout=120,
    )
    return proc.returncode, (proc.stdout + proc.stderr).decode()


def start(env, command, message=MESSAGE, **extra):
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**env, **extra},
    )
    process.stdin.write(message)
    process.stdin.close()
    return process


def manage(env, *args, **extra):
    proc = subprocess.run(
        [sys.executable, "-m", "django", *args],
        capture_output=True,
        env={**env, **extra},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode()


def wait_for_marker(env, process, point):
    """Until the process says it has stopped at ``point`` (a safety net of a minute)."""
    marker = Path(env["MAILSERVER_TEST_MARKER"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if marker.exists() and marker.read_text() == point:
            marker.unlink()
            return
        if process.poll() is not None:
            raise AssertionError(f"exited {process.returncode}: {process.stdout.read()}")
        time.sleep(0.02)
    raise AssertionError(f"never reached {point}")


def kill(process):
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    assert process.returncode == -signal.SIGKILL


def sent(env):
    """Replies the mail backend sent (not mail to ADMINS): their Message-IDs."""
    from email import message_from_bytes

    ids = []
    for path in sorted(Path(env["MAILSERVER_TEST_SENT"]).iterdir()):
        message = message_from_bytes(path.read_bytes())
        if message["To"] != "admin@example.com":
            ids.append(message["Message-ID"])
    return ids


def raw_files(env):
    return [p for p in Path(env["MAIL_STORE_ROOT"]).rglob("*") if p.is_file()]


def tickets(db):
    return db.count("mailapp_ticket")


def inbound(db, *columns):
    return db.rows(f"SELECT {', '.join(columns)} FROM mailserver_store_inboundmessage ORDER BY id")


def replies(db):
    return db.rows("SELECT status, attempts FROM mailserver_store_outboundmessage ORDER BY id")


def test_delivered_twice_handled_once(processes):
    env, db = processes
    assert pipe(env) == (0, "")
    assert pipe(env) == (0, "")
    assert tickets(db) == 1 and len(sent(env)) == 1
    assert inbound(db, "status", "attempts") == [("processed", 1)]
    assert db.count("mailserver_store_inboundattempt", "replayed") == 1


def test_two_deliveries_at_once_run_the_view_once(processes, tmp_path):
    """
    The first stops in its view, holding the message's row; the second
    comes meanwhile and waits for it, then answers from its record.
    """
    env, db = processes
    gate = tmp_path / "gate"
    first = start(env, pipe_command(), MAILSERVER_TEST_PAUSE="view", MAILSERVER_TEST_GATE=str(gate))
    wait_for_marker(env, first, "view")
    # SQLite's busy timeout must outlast the wait.
    second = start(env, pipe_command(), MAILSERVER_TEST_DB_TIMEOUT="120")
    if POSTGRES:
        waiting_for_the_lock(db)
    else:
        time.sleep(1)  # the second has no way to say it waits; both orders must pass
    gate.write_text("go")
    assert (first.wait(60), second.wait(60)) == (0, 0)
    assert first.stdout.read() == second.stdout.read() == b""
    assert tickets(db) == 1 and len(sent(env)) == 1
    attempts = db.rows("SELECT replayed FROM mailserver_store_inboundattempt ORDER BY finished_at")
    # The first run succeeded, and its row is its record: the second
    # delivery's answer from the record is the one attempt written.
    assert [bool(a) for (a,) in attempts] == [True]


def waiting_for_the_lock(db):
    """Until a PostgreSQL backend waits for a row lock (a safety net of a minute)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if db.rows(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )[0][0]:
            return
        time.sleep(0.02)
    raise AssertionError("the second delivery never waited for the lock")


def test_killed_in_the_view_before_the_commit_the_retry_runs_it_afresh(processes):
    env, db = processes
    first = start(env, pipe_command(), MAILSERVER_TEST_PAUSE="view")
    wait_for_marker(env, first, "view")
    kill(first)
    # Nothing of the run is left: a small message's bytes go in its row,
    # which was never committed (a large one's file stays, for purgemail to
    # sweep if the MTA never comes again: see test_retention).
    assert tickets(db) == 0 and not sent(env) and not replies(db)
    assert inbound(db, "status") == []
    assert raw_files(env) == []
    assert pipe(env) == (0, "")
    assert tickets(db) == 1 and len(sent(env)) == 1
    assert inbound(db, "status", "attempts") == [("processed", 1)]
    assert raw_files(env) == []


def test_killed_after_the_commit_the_retry_finds_it_done(processes):
    """Killed while sending the reply: the message is handled, the reply waits."""
    env, db = processes
    first = start(env, pipe_command(), MAILSERVER_TEST_PAUSE="send")
    wait_for_marker(env, first, "send")
    kill(first)
    assert tickets(db) == 1 and not sent(env)
    assert inbound(db, "status") == [("processed",)]
    assert replies(db) == [("pending", 0)]  # claimed by the dead process
    # The MTA retries: answered from the record, no view. The reply is
    # still under the dead sender's lease, so it is left alone...
    assert pipe(env) == (0, "")
    assert tickets(db) == 1 and not sent(env)
    # ...until the lease runs out; then the next retry or sendreplies sends it.
    db.execute("UPDATE mailserver_store_outboundmessage SET lease_expires_at = NULL")
    assert pipe(env) == (0, "")
    assert len(sent(env)) == 1 and replies(db) == [("sent", 1)]
    assert manage(env, "sendreplies") == "Sent 0, to retry 0, given up 0.\n"
    assert tickets(db) == 1 and len(sent(env)) == 1


def test_a_reply_that_cannot_be_sent_is_sent_later_by_sendreplies(processes):
    env, db = processes
    # The outgoing mail server is down: the message is still delivered.
    assert pipe(env, MAILSERVER_TEST_MAIL="fail") == (0, "")
    assert tickets(db) == 1 and not sent(env)
    assert replies(db) == [("pending", 1)]
    assert manage(env, "sendreplies") == "Sent 0, to retry 0, given up 0.\n"  # not due yet
    # The retry delay passes.
    db.execute("UPDATE mailserver_store_outboundmessage SET next_attempt_at = created_at")
    assert manage(env, "sendreplies") == "Sent 1, to retry 0, given up 0.\n"
    assert manage(env, "sendreplies") == "Sent 0, to retry 0, given up 0.\n"
    assert len(sent(env)) == 1 and replies(db) == [("sent", 2)]
    assert tickets(db) == 1


def test_an_upstream_resend_with_an_extra_received_header_is_handled_once(processes):
    env, db = processes
    assert pipe(env) == (0, "")
    resent = (
        b"Received: from mx2.example.org (mx2.example.org [192.0.2.7])\n"
        b"\tby mail.example.com (Postfix) with ESMTP id 5RY2ZZ\n"
        b"\tfor <help@desk.example.com>; Tue, 1 Dec 2026 10:07:00 +0000 (UTC)\n" + MESSAGE
    )
    assert pipe(env, resent) == (0, "")
    assert tickets(db) == 1 and len(sent(env)) == 1


def test_two_messages_sharing_a_message_id_are_both_handled(processes):
    env, db = processes
    assert pipe(env) == (0, "")
    assert pipe(env, MESSAGE.replace(b"Help!", b"And the fax.")) == (0, "")
    assert tickets(db) == 2 and len(sent(env)) == 2
    assert len(set(sent(env))) == 2


def test_a_view_that_fails_once_runs_again_when_the_mta_retries(processes):
    env, db = processes
    assert pipe(env, recipient="flaky@desk.example.com") == (
        75,
        "4.3.0 temporary failure, try again later",
    )
    assert tickets(db) == 0
    assert inbound(db, "status", "attempts") == [("deferred", 1)]
    assert pipe(env, recipient="flaky@desk.example.com") == (0, "")
    assert pipe(env, recipient="flaky@desk.example.com") == (0, "")
    assert tickets(db) == 1 and len(sent(env)) == 1
    assert inbound(db, "status", "attempts") == [("processed", 2)]


def test_a_bounce_is_bounced_again_with_the_same_line(processes):
    env, db = processes
    first = pipe(env, recipient="nobody@example.com")
    assert first == (67, "5.1.1 <nobody@example.com>: no such mailbox")
    assert pipe(env, recipient="nobody@example.com") == first
    assert inbound(db, "status", "attempts") == [("bounced", 1)]


def test_two_senders_at_once_send_each_reply_once(processes, tmp_path):
    env, db = processes
    for n in range(12):
        message = MESSAGE.replace(b"<p1@", b"<p1-%d@" % n)
        assert pipe(env, message, MAILSERVER_TEST_MAIL="fail") == (0, "")
    db.execute("UPDATE mailserver_store_outboundmessage SET next_attempt_at = created_at")
    gate = tmp_path / "gate"
    # The first sender stops in its first send, holding that reply...
    first = start(
        env,
        [sys.executable, "-m", "django", "sendreplies"],
        b"",
        MAILSERVER_TEST_PAUSE="send",
        MAILSERVER_TEST_GATE=str(gate),
    )
    wait_for_marker(env, first, "send")
    # ...the second sends all the others, and leaves that one alone...
    assert manage(env, "sendreplies") == "Sent 11, to retry 0, given up 0.\n"
    # ...which the first then sends; the others it finds sent.
    gate.write_text("go")
    assert first.wait(60) == 0
    assert first.stdout.read() == b"Sent 1, to retry 0, given up 0.\n"
    ids = sent(env)
    assert len(ids) == len(set(ids)) == 12
    assert set(replies(db)) == {("sent", 2)}


def test_readmail_goes_through_the_store_too(processes, tmp_path):
    env, db = processes
    path = tmp_path / "message.eml"
    path.write_bytes(MESSAGE)
    for _ in range(2):
        proc = subprocess.run(
            [*READMAIL, str(path), "--sender", "ann@example.org", "--recipient", HELP],
            capture_output=True,
            env=env,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
    assert tickets(db) == 1 and len(sent(env)) == 1
    assert inbound(db, "transport", "status") == [("readmail", "processed")]


def test_runmailserver_and_the_relay_mode_go_through_the_store(processes):
    from tests.server.conftest import wait_for_socket

    env, db = processes
    directory = tempfile.mkdtemp(prefix="ms-")
    path = f"{directory}/lmtp.sock"
    server = subprocess.Popen(
        [sys.executable, "-m", "django", "runmailserver", "--bind", f"unix:{path}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_socket(path, server)
        via = [*pipe_command(), "--via", f"unix:{path}"]
        for message in (MESSAGE, b"Received: from elsewhere\n" + MESSAGE, MESSAGE):
            proc = subprocess.run(via, input=message, capture_output=True, env=env, timeout=60)
            assert (proc.returncode, proc.stdout + proc.stderr) == (0, b"")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        shutil.rmtree(directory, ignore_errors=True)
    assert tickets(db) == 1 and len(sent(env)) == 1
    assert inbound(db, "transport", "status") == [("lmtp", "processed")]
    assert db.count("mailserver_store_inboundattempt", "replayed") == 2


def test_sendreplies_loop_sends_as_replies_come_and_stops_on_sigterm(processes):
    env, db = processes
    sender = subprocess.Popen(
        [sys.executable, "-m", "django", "sendreplies", "--loop", "--interval", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**env, "MAILSERVER_TEST_RETRY_DELAY": "0"},
    )
    try:
        assert pipe(env, MAILSERVER_TEST_MAIL="fail", MAILSERVER_TEST_RETRY_DELAY="0") == (0, "")
        deadline = time.monotonic() + 60
        while not sent(env) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sender.send_signal(signal.SIGTERM)
        assert sender.wait(30) == 0
    assert sender.stdout.read() == b"Sent 1, to retry 0, given up 0.\n"
    assert len(sent(env)) == 1 and replies(db) == [("sent", 2)]


def test_out_of_time_in_the_view_the_retry_runs_it_afresh(processes):
    env, db = processes
    proc = subprocess.run(
        [*pipe_command(), "--deadline", "1"],
        input=MESSAGE,
        capture_output=True,
        env={**env, "MAILSERVER_TEST_PAUSE": "view"},  # stops in the view, no gate
        timeout=120,
    )
    output = proc.stdout + proc.stderr
    assert (proc.returncode, output) == (75, b"4.3.0 gave up after 1 s; will retry")
    assert tickets(db) == 0 and inbound(db, "status") == []
    assert pipe(env) == (0, "")
    assert tickets(db) == 1 and len(sent(env)) == 1
