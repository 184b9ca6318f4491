"""
Queued processing as it runs: django-mailpipe, two db_worker processes of
django-tasks-db's DatabaseBackend and retrymail, real processes on a real
database (SQLite, or PostgreSQL with MAILSERVER_TEST_DATABASE=postgres).

What counts is committed work: tickets (one per run of a help desk view
that committed) and reply files (one per message the mail backend sent).
The tests wait for the workers by watching the database, each wait bounded.
"""

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import (
    POSTGRES,
    TABLES,
    ProcessDatabase,
)

HELP = "help@desk.example.com"
TASKS_TABLE = "django_tasks_database_dbtaskresult"
INBOUND = "mailserver_store_inboundmessage"


def message(n=1, subject="Printer on fire"):
    return (
        f"From: Ann <ann@example.org>\n"
        f"To: {HELP}\n"
        f"Subject: {subject} {n}\n"
        f"Message-ID: <queued-{n}@example.org>\n"
        f"\n"
        f"Help!\n"
    ).encode()


@pytest.fixture(scope="session")
def queue_process_env(tmp_path_factory):
    """tests/queue_settings.py on a migrated database of its own, for the session."""
    from .conftest import process_env

    yield from process_env(
        tmp_path_factory.mktemp("queue-processes"),
        "tests.queue_settings",
        "mailserver_queue",
        "sent",
        "flags",
        "marker",
        "gate",
        "logs",
    )


class Workers:
    """db_worker processes, stopped at the end of the test."""

    def __init__(self, env):
        self.env = env
        self.processes = {}

    def start(self, name, **extra):
        log = Path(self.env["MAILSERVER_TEST_LOGS"]) / f"{name}.log"
        self.processes[name] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "django",
                "db_worker",
                "--interval",
                "0.1",
                "--no-startup-delay",
                "--worker-id",
                name,
                "--no-reload",
            ],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            env={**self.env, **extra},
        )
        return self.processes[name]

    def by_pid(self, pid):
        return next(name for name, p in self.processes.items() if p.pid == pid)

    def kill(self, name):
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        assert process.returncode == -signal.SIGKILL

    def log(self, name):
        return (Path(self.env["MAILSERVER_TEST_LOGS"]) / f"{name}.log").read_text()

    def stop(self):
        for process in self.processes.values():
            process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def queued(queue_process_env):
    """A clean slate (no rows, files or flags), and the test's workers, stopped after it."""
    env = dict(queue_process_env)
    db = ProcessDatabase(env)
    db.execute(*(f"DELETE FROM {table}" for table in [TASKS_TABLE, *TABLES]))
    for name in (
        "MAIL_STORE_ROOT",
        "MAILSERVER_TEST_SENT",
        "MAILSERVER_TEST_FLAGS",
        "MAILSERVER_TEST_LOGS",
    ):
        shutil.rmtree(env[name], ignore_errors=True)
        Path(env[name]).mkdir(parents=True)
    for name in ("MAILSERVER_TEST_MARKER", "MAILSERVER_TEST_GATE"):
        Path(env[name]).unlink(missing_ok=True)
    workers = Workers(env)
    yield env, db, workers
    workers.stop()


def pipe(env, raw, recipient=HELP, **extra):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mailserver.pipe",
            "--sender",
            "ann@example.org",
            "--recipient",
            recipient,
        ],
        input=raw,
        capture_output=True,
        env={**env, **extra},
        timeout=120,
    )
    return proc.returncode, (proc.stdout + proc.stderr).decode()


def manage(env, *args, **extra):
    proc = subprocess.run(
        [sys.executable, "-m", "django", *args],
        capture_output=True,
        env={**env, **extra},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode()


def wait_until(condition, what, seconds=120):
    """Poll ``condition`` until it holds; a safety net, not a measure of speed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"never: {what}")


def statuses(db):
    return [status for (status,) in db.rows(f"SELECT status FROM {INBOUND} ORDER BY id")]


def settled(db, count):
    """Every one of ``count`` messages processed, and its replies sent (after the commit)."""
    return statuses(db) == ["processed"] * count and not db.count(
        "mailserver_store_outboundmessage", "status = 'pending'"
    )


def history(db, pk):
    return [
        outcome
        for (outcome,) in db.rows(
            "SELECT outcome FROM mailserver_store_inboundattempt "
            f"WHERE message_id = {pk} ORDER BY started_at, id"
        )
    ]


def tasks(db, name="process_message"):
    """The backend's tasks of one kind, oldest first: status, and the workers that took each."""
    import json

    return [
        (status, tuple(json.loads(ids) if isinstance(ids, str) else ids))
        for status, ids in db.rows(
            f"SELECT status, worker_ids FROM {TASKS_TABLE} "
            f"WHERE task_path = 'mailserver.store.tasks.{name}' ORDER BY enqueued_at"
        )
    ]


def sent(env):
    """Replies the mail backend sent (not mail to ADMINS): their Message-IDs."""
    from email import message_from_bytes

    ids = []
    for path in sorted(Path(env["MAILSERVER_TEST_SENT"]).iterdir()):
        mail = message_from_bytes(path.read_bytes())
        if mail["To"] != "admin@example.com":
            ids.append(mail["Message-ID"])
    return ids


def test_the_pipe_answers_once_stored_and_refuses_an_unknown_recipient_at_once(queued):
    env, db, _ = queued
    # No worker runs: the MTA's answer does not wait for the view.
    assert pipe(env, message()) == (0, "")
    assert statuses(db) == ["received"] and db.count("mailapp_ticket") == 0
    assert db.rows(f"SELECT status, task_path FROM {TASKS_TABLE}") == [
        ("READY", "mailserver.store.tasks.process_message"),
    ]
    assert pipe(env, message(2), recipient="nobody@desk.example.com") == (
        67,
        "5.1.1 <nobody@desk.example.com>: no such mailbox",
    )
    assert statuses(db) == ["received", "bounced"]
    assert db.count(TASKS_TABLE) == 1


def test_two_workers_run_each_view_exactly_once(queued):
    env, db, workers = queued
    workers.start("worker-1")
    workers.start("worker-2")
    count = 20
    for n in range(count):
        assert pipe(env, message(n)) == (0, "")
    # Delivered again by the MTA (a lost answer) while the workers run: the
    # same messages, handled once.
    for n in range(5):
        assert pipe(env, b"Received: from mx2 by mail; Tue, 1 Dec 2026\n" + message(n))[0] == 0
    wait_until(lambda: settled(db, count), "every message processed, its reply sent")

    assert db.count("mailapp_ticket") == count
    assert len(set(sent(env))) == len(sent(env)) == count
    assert db.rows(f"SELECT DISTINCT attempts FROM {INBOUND}") == [(1,)]
    assert db.count(TASKS_TABLE, "status = 'FAILED'") == 0
    ran = {ids for _, ids in tasks(db)}
    assert ran <= {("worker-1",), ("worker-2",)}


def test_a_worker_killed_in_mid_view_leaves_the_message_to_the_other(queued):
    env, db, workers = queued
    lease = {"MAILSERVER_TEST_STORE_LEASE": "2", "MAILSERVER_TEST_PAUSE": "view"}
    workers.start("worker-1", **lease)
    workers.start("worker-2", **lease)
    assert pipe(env, message(), **lease) == (0, "")
    marker = Path(env["MAILSERVER_TEST_MARKER"])
    wait_until(lambda: marker.exists(), "a worker in the view")
    [(owner, status)] = db.rows(f"SELECT lease_owner, status FROM {INBOUND}")
    assert status == "processing"
    victim = workers.by_pid(int(owner.split(":")[-2]))
    workers.kill(victim)
    # Its transaction died with it: no ticket, and the message is still its.
    assert db.count("mailapp_ticket") == 0 and statuses(db) == ["processing"]
    Path(env["MAILSERVER_TEST_GATE"]).touch()  # the next run of the view goes through
    # The sweep as a service beside the workers, as the README runs it.
    log = Path(env["MAILSERVER_TEST_LOGS"]) / "retrymail.log"
    sweeper = subprocess.Popen(
        [sys.executable, "-m", "django", "retrymail", "--loop", "--interval", "0.2"],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**env, **lease},
    )
    try:
        wait_until(lambda: settled(db, 1), "the message taken over and processed")
    finally:
        sweeper.send_signal(signal.SIGTERM)
        assert sweeper.wait(30) == 0, log.read_text()
    assert "Requeued 1, given up 0, reply sending queued 0." in log.read_text()
    assert db.count("mailapp_ticket") == 1
    assert len(sent(env)) == 1
    [(pk, attempts)] = db.rows(f"SELECT id, attempts FROM {INBOUND}")
    assert attempts == 1 and history(db, pk) == ["queued", "delivered"]
    survivor = ({"worker-1", "worker-2"} - {victim}).pop()
    # The killed worker's task is left running in the backend; the sweep's ran on the other.
    wait_until(
        lambda: tasks(db) == [("RUNNING", (victim,)), ("SUCCESSFUL", (survivor,))],
        "the survivor's task marked done",
    )
    # The sweep's loop also handed the workers the day's retention purge.
    wait_until(lambda: tasks(db, "purge_mail")[0][0] == "SUCCESSFUL", "the purge run")


def test_a_temporary_failure_is_retried_by_the_workers_with_backoff(queued):
    env, db, workers = queued
    retry = {"MAILSERVER_TEST_STORE_RETRY_DELAY": "1"}
    workers.start("worker-1", **retry)
    workers.start("worker-2", **retry)
    raw = message(subject="Flaky")
    assert pipe(env, raw, recipient="flaky@desk.example.com", **retry) == (0, "")
    wait_until(lambda: settled(db, 1), "the retry processed")

    [(pk, attempts)] = db.rows(f"SELECT id, attempts FROM {INBOUND}")
    assert attempts == 2
    assert history(db, pk) == ["queued", "temporary_failure", "delivered"]
    assert db.count("mailapp_ticket") == 1 and len(sent(env)) == 1
    # The second run started no sooner than the backoff after the first ended.
    [(failed_at,), (retried_at,)] = db.rows(
        "SELECT finished_at FROM mailserver_store_inboundattempt "
        f"WHERE message_id = {pk} AND outcome != 'queued' ORDER BY started_at"
    )
    [(started,)] = db.rows(
        "SELECT started_at FROM mailserver_store_inboundattempt "
        f"WHERE message_id = {pk} AND outcome = 'delivered'"
    )
    assert _seconds(started) - _seconds(failed_at) >= 1
    # Two tasks: the first run's, and the retry it enqueued to run after the
    # backoff (each marked done by its worker once it has returned).
    wait_until(
        lambda: [status for status, _ in tasks(db)] == ["SUCCESSFUL", "SUCCESSFUL"],
        "both tasks marked done",
    )


def _seconds(value):
    from datetime import datetime

    if isinstance(value, str):  # SQLite
        value = datetime.fromisoformat(value)
    return value.timestamp()


def test_a_long_view_holds_back_the_other_worker_only_on_sqlite(queued):
    env, db, workers = queued
    pause = {"MAILSERVER_TEST_PAUSE": "view"}
    workers.start("worker-1", **pause)
    workers.start("worker-2", **pause)
    assert pipe(env, message()) == (0, "")
    marker = Path(env["MAILSERVER_TEST_MARKER"])
    wait_until(lambda: marker.exists(), "a worker in the view")
    [(owner,)] = db.rows(f"SELECT lease_owner FROM {INBOUND}")
    busy = workers.by_pid(int(owner.split(":")[-2]))
    quiet = [message(n, subject="Quiet") for n in range(2, 6)]
    if POSTGRES:
        # Row locks: the other worker takes the other messages meanwhile.
        for raw in quiet:
            assert pipe(env, raw, recipient="quiet@desk.example.com") == (0, "")
        wait_until(
            lambda: statuses(db) == ["processing"] + ["processed"] * len(quiet),
            "the other messages processed while the first view runs",
        )
        other = ({"worker-1", "worker-2"} - {busy}).pop()
        # A task is marked done after its message is: wait for the last mark.
        wait_until(
            lambda: [ids for status, ids in tasks(db) if status == "SUCCESSFUL"] == [(other,)] * 4,
            "the other worker's four tasks marked done",
        )
    else:
        # One writer: the view's transaction holds the write lock, and a
        # delivery meanwhile cannot store its message, so the MTA is told
        # to try again later.
        code, line = pipe(env, quiet[0], recipient="quiet@desk.example.com")
        assert (code, line) == (75, "4.3.0 temporary failure, try again later")
    Path(env["MAILSERVER_TEST_GATE"]).touch()
    wait_until(lambda: settled(db, len(statuses(db))), "every message processed")
    assert db.count("mailapp_ticket") == len(statuses(db))
    assert len(sent(env)) == 1
