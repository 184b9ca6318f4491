#!/usr/bin/env python
"""
The store's queued processing against inline processing (issue 8, point 5),
on SQLite and on PostgreSQL, with the help desk view of the store's tests
(it writes a ticket and replies; replies go to files).

    python benchmarks/queued.py                  # 100 messages, both databases
    python benchmarks/queued.py --messages 300
    python benchmarks/queued.py --database sqlite
    python benchmarks/queued.py --quick          # 20 messages: a smoke test

Two figures for each database:

  pipe       wall time per message of django-mailpipe, one process per
             message as an MTA runs it, inline (the view runs before the
             answer) and queued (stored, checked and enqueued), interleaved
             so that drift hits both alike: median and p90, and their ratio;
  workers    messages per second that db_worker processes (django-tasks-db's
             DatabaseBackend on the same database) take from a full queue to
             processed: N messages queued first, then 1 and 2 workers
             started, the clock running until the last message's row says
             processed.

PostgreSQL is the one at 127.0.0.1:5432 (trust authentication, user
postgres), as in the tests; each run creates and drops a database of its own.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def message(n: int) -> bytes:
    return (
        f"From: Ann <ann@example.org>\nTo: help@desk.example.com\nSubject: Printer {n}\n"
        f"Message-ID: <bench-{n}-{uuid.uuid4().hex}@example.org>\n\nHelp!\n"
    ).encode()


class Database:
    """A database of the run's own, and plain SQL on it."""

    def __init__(self, kind: str, base: Path):
        self.kind = kind
        if kind == "postgres":
            self.name = f"mailserver_bench_{uuid.uuid4().hex[:10]}"
            self._postgres("postgres", f'CREATE DATABASE "{self.name}"')
        else:
            self.name = str(base / "bench.sqlite3")

    @staticmethod
    def _postgres(name, sql):
        import psycopg

        with psycopg.connect(host="127.0.0.1", user="postgres", dbname=name, autocommit=True) as db:
            cursor = db.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def rows(self, sql):
        if self.kind == "postgres":
            return self._postgres(self.name, sql)
        db = sqlite3.connect(self.name, timeout=30, isolation_level=None)
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()

    def count(self, table, where="1=1"):
        return self.rows(f"SELECT count(*) FROM {table} WHERE {where}")[0][0]

    def clear(self):
        for table in (
            "django_tasks_database_dbtaskresult",
            "mailserver_store_outboundmessage",
            "mailserver_store_inboundattempt",
            "mailserver_store_inboundmessage",
            "mailapp_ticket",
        ):
            self.rows(f"DELETE FROM {table}")

    def drop(self):
        if self.kind == "postgres":
            self._postgres("postgres", f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def environment(db: Database, base: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.queue_settings",
        "PYTHONPATH": str(ROOT),
        "MAILSERVER_TEST_DATABASE": db.kind,
        "MAILSERVER_TEST_DB": db.name,
        "MAIL_STORE_ROOT": str(base / "store"),
        "MAILSERVER_TEST_SENT": str(base / "sent"),
        "MAILSERVER_TEST_FLAGS": str(base / "flags"),
        "MAILSERVER_TEST_MARKER": str(base / "marker"),
    }
    if db.kind == "sqlite":
        env["MAILSERVER_TEST_DB_TIMEOUT"] = "30"
    return env


def pipe(env, raw, mode):
    extra = {"MAILSERVER_TEST_STORE_PROCESSING": mode}
    started = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mailserver.pipe",
            "--sender",
            "ann@example.org",
            "--recipient",
            "help@desk.example.com",
        ],
        input=raw,
        capture_output=True,
        env={**env, **extra},
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{mode} pipe exited {proc.returncode}: {proc.stdout + proc.stderr!r}")
    return elapsed


def pipe_figures(env, db, count):
    times = {"inline": [], "queued": []}
    for n in range(count):
        for mode in ("inline", "queued") if n % 2 else ("queued", "inline"):
            times[mode].append(pipe(env, message(n), mode))
    processed = db.count("mailserver_store_inboundmessage", "status = 'processed'")
    if processed != count:
        raise SystemExit(f"inline: {processed} of {count} processed")
    return times


def workers_figure(env, db, count, workers):
    db.clear()
    for n in range(count):
        pipe(env, message(n), "queued")
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "django",
                "db_worker",
                "--interval",
                "0.05",
                "--no-startup-delay",
                "--worker-id",
                f"bench-{i}",
                "--no-reload",
                "--verbosity",
                "0",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(workers)
    ]
    started = time.perf_counter()
    try:
        deadline = started + 600
        while time.perf_counter() < deadline:
            done = db.count("mailserver_store_inboundmessage", "status = 'processed'")
            if done == count:
                break
            time.sleep(0.05)
        else:
            raise SystemExit(f"{workers} worker(s): {done} of {count} processed in 600 s")
        elapsed = time.perf_counter() - started
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(60)
    tickets = db.count("mailapp_ticket")
    if tickets != count:
        raise SystemExit(f"{tickets} tickets for {count} messages")
    # Worker start-up (Django set up) is inside the clock: a figure for a
    # full queue, not for a warm worker's steady state.
    return count / elapsed


def p90(values):
    return sorted(values)[int(0.9 * (len(values) - 1))]


def run(kind, count):
    base = Path(tempfile.mkdtemp(prefix=f"mailserver-queued-{kind}-"))
    db = Database(kind, base)
    try:
        env = environment(db, base)
        subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--verbosity", "0"], env=env, check=True
        )
        times = pipe_figures(env, db, count)
        inline, queued = (statistics.median(times[m]) for m in ("inline", "queued"))
        print(
            f"{kind:8} pipe, per message: inline {inline * 1000:.0f} ms "
            f"(p90 {p90(times['inline']) * 1000:.0f}), queued {queued * 1000:.0f} ms "
            f"(p90 {p90(times['queued']) * 1000:.0f}); queued/inline {queued / inline:.2f}"
        )
        for workers in (1, 2):
            rate = workers_figure(env, db, count, workers)
            print(f"{kind:8} {workers} worker(s): {rate:.1f} msg/s from a full queue")
    finally:
        db.drop()
        shutil.rmtree(base, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    count = 20 if args.quick else args.messages
    for kind in ("sqlite", "postgres") if args.database == "both" else (args.database,):
        run(kind, count)


if __name__ == "__main__":
    main()
