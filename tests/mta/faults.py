"""
The fault-injection run of issue 8: is every message handled once, and
answered once, through a real Postfix, when everything that can fail does?

N messages go into a private Postfix over SMTP, ``concurrency`` connections
at once, all to help@mail.test, whose view (tests/mta/faultproject) writes
one row per run and replies. Postfix delivers them through the pipe
(django-mailpipe, one process per message) or over LMTP to one
runmailserver. The faults are chosen from each message's number
(faultproject/plan.py), so a run with the same seed strikes the same
messages:

- the view raises on its first attempt (10% of messages);
- the outgoing mail backend fails, raising as smtplib does (20% of sends);
- the process handling the message is killed with SIGKILL (5%), at one of
  plan.KILL_POINTS: before the view, before the commit, after it, after
  everything, or from a thread after a random delay. A killed pipe is
  deferred by Postfix; a killed runmailserver drops every session it holds
  and is started again by :class:`ServerWatchdog`, as a service manager would;
- the message is re-sent upstream (5%): injected a second time, with one
  more Received header and nothing else changed.

The instance's Postfix retries within a second or two (see
:data:`RETRY_SETTINGS`). Once it has logged a final state for every message
and its queue is empty, ``manage.py sendreplies`` drains the store's outbox,
and the end state is checked (:meth:`Figures.problems`): one row and one
reply per message, nothing bounced, nothing queued, every stored message
processed and every reply sent. Without mailserver.store, the same run must
fail these checks: that is what the store is for.

The database is a fresh PostgreSQL database (dropped afterwards) or a SQLite
file, migrated by the pipe user before the run.
"""

from __future__ import annotations

import email.policy
import json
import queue
import re
import smtplib
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path

from .faultproject.plan import (
    KILL_POINTS,
    NUMBER_HEADER,
    RAISES_PER_BLOCK,
    SEND_FAIL_PERCENT,
    Faults,
    Ledger,
    percent,
)
from .harness import (
    REPO,
    SENDER_DOMAIN,
    TEST_DOMAIN,
    HarnessError,
    MaillogTail,
    PipeRuntime,
    Postfix,
    ServerProcess,
    make_message,
    pipe_user,
)

SENDER = f"alice@{SENDER_DOMAIN}"
RECIPIENT = f"help@{TEST_DOMAIN}"
# Postfix's retry clock, for this instance only: a deferred message is tried
# again within a second or two instead of minutes (the defaults are 300s
# between queue scans and 300s to 4000s of backoff).
RETRY_SETTINGS = {
    "queue_run_delay": "1s",
    "minimal_backoff_time": "1s",
    "maximal_backoff_time": "2s",
}
# The transports of contrib/postfix, whose concurrency the run sets.
TRANSPORTS = {"pipe": "django", "lmtp": "mailserver"}
# How Postfix explains a message it did not try: its destination was found
# down (here: runmailserver killed) and is retried as a whole later.
SUSPENDED = "delivery temporarily suspended"
# The store's final state for a message the view has handled.
PROCESSED = "processed"

POSTGRES = {"HOST": "127.0.0.1", "PORT": "5432", "USER": "postgres"}


def store_available() -> bool:
    return (REPO / "mailserver" / "store" / "__init__.py").exists()


def missing_postgres(params: dict = POSTGRES) -> str | None:
    """Why the run cannot use PostgreSQL here, or None."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    try:
        psycopg.connect(**_conninfo(params, "postgres"), connect_timeout=5).close()
    except psycopg.Error as exc:
        return f"PostgreSQL at {params['HOST']}:{params['PORT']} unreachable: {exc}"
    return None


def _conninfo(params: dict, dbname: str) -> dict:
    return {
        "host": params["HOST"],
        "port": params["PORT"],
        "user": params["USER"],
        "dbname": dbname,
    }


# --------------------------------------------------------------------------
# the databases


class PostgresDatabase:
    """A database of its own for one run, made before it and dropped after."""

    engine = "postgres"

    def __init__(self, name: str, params: dict = POSTGRES):
        self.name = name
        self.params = params

    def settings(self, runtime: PipeRuntime) -> dict:
        return {"ENGINE": "django.db.backends.postgresql", "NAME": self.name, **self.params}

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(**_conninfo(self.params, "postgres"), autocommit=True) as conn:
            conn.execute(sql)

    def create(self) -> None:
        self._admin(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class SqliteDatabase:
    """A file in the run's records directory, which the pipe user owns."""

    engine = "sqlite"

    def settings(self, runtime: PipeRuntime) -> dict:
        import django

        options = {"timeout": 60}
        if django.VERSION >= (5, 1):
            # Take the write lock when a transaction begins: a deferred one
            # that reads first and then writes fails at once, without
            # waiting, when another process wrote in between.
            options["transaction_mode"] = "IMMEDIATE"
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(runtime.records / "faults.sqlite3"),
            "OPTIONS": options,
        }

    def create(self) -> None:
        pass  # migrate makes the file

    def drop(self) -> None:
        pass  # removed with the run's directory


# --------------------------------------------------------------------------
# runmailserver, started again after each kill


class ServerWatchdog(threading.Thread):
    """Starts runmailserver again whenever it dies, as ``Restart=always`` would."""

    def __init__(self, server: ServerProcess):
        super().__init__(name="server-watchdog", daemon=True)
        self.server = server
        self.restarts = 0
        self.errors: list[str] = []
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(0.05):
            if self.server.running:
                continue
            try:
                self.server.start()
                self.restarts += 1
            except HarnessError as exc:
                self.errors.append(str(exc))

    def stop(self) -> None:
        self._stopping.set()
        self.join(30)


# --------------------------------------------------------------------------
# injection


@dataclass
class Injection:
    """The messages as they go in: originals in order, re-sent copies among them."""

    items: list[tuple[int, int, bytes]]  # (number, copy, data)
    submitted: dict[str, tuple[int, int]] = field(default_factory=dict)  # queue id -> item
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @classmethod
    def build(cls, count: int, seed: int) -> Injection:
        keyed = []
        for number in range(count):
            msg = make_message(subject=f"fault run, message {number}", sender=SENDER, to=RECIPIENT)
            msg[NUMBER_HEADER] = str(number)
            # Written by the sender, so the same in a re-sent copy. Without
            # it Postfix adds one as it takes each copy in, and copies taken
            # in different seconds are different messages.
            msg["Date"] = formatdate()
            data = msg.as_bytes(policy=email.policy.SMTP)
            keyed.append(((number, 0), (number, 0, data)))
            faults = Faults.for_message(seed, number)
            if faults.resend:
                keyed.append(
                    ((number + faults.resend_offset, 1), (number, 1, resent(data, number)))
                )
        return cls([item for _key, item in sorted(keyed, key=lambda k: k[0])])

    def run(self, port: int, connections: int) -> None:
        todo: queue.SimpleQueue = queue.SimpleQueue()
        for item in self.items:
            todo.put(item)
        lock = threading.Lock()

        def worker():
            smtp = None
            while True:
                try:
                    item = todo.get_nowait()
                except queue.Empty:
                    break
                for _try in range(5):
                    try:
                        if smtp is None:
                            smtp = smtplib.SMTP("127.0.0.1", port, timeout=120)
                            smtp.ehlo(SENDER_DOMAIN)
                        queue_id = _submit(smtp, item[2])
                        with lock:
                            self.submitted[queue_id] = item[:2]
                        break
                    except (OSError, smtplib.SMTPException, HarnessError) as exc:
                        with lock:
                            self.errors.append(f"message {item[0]}: {exc}")
                        smtp = _close(smtp)
                        time.sleep(0.5)
            _close(smtp)

        started = time.monotonic()
        threads = [threading.Thread(target=worker) for _ in range(connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.seconds = time.monotonic() - started
        if len(self.submitted) != len(self.items):
            raise HarnessError(
                f"only {len(self.submitted)} of {len(self.items)} messages injected: "
                f"{self.errors[:3]}"
            )


def resent(data: bytes, number: int) -> bytes:
    """The same message as an upstream MTA sends it again: one more Received field."""
    trace = (
        f"Received: from relay.{SENDER_DOMAIN} (relay.{SENDER_DOMAIN} [192.0.2.25])\r\n"
        f"\tby mx.{SENDER_DOMAIN} with ESMTP id resend{number};\r\n"
        f"\t{formatdate()}\r\n"
    )
    return trace.encode() + data


def _submit(smtp: smtplib.SMTP, data: bytes) -> str:
    code, resp = smtp.mail(SENDER)
    if code == 250:
        code, resp = smtp.rcpt(RECIPIENT)
    if code == 250:
        code, resp = smtp.data(data)
    m = re.search(rb"queued as ([0-9A-Za-z]+)", resp)
    if code != 250 or not m:
        smtp.rset()
        raise HarnessError(f"refused: {code} {resp!r}")
    return m.group(1).decode()


def _close(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


# --------------------------------------------------------------------------
# the figures


@dataclass
class Figures:
    """What a run did and what it left, and which of the checks it fails."""

    path: str
    database: str
    store: bool
    messages: int
    concurrency: int
    seed: int
    injected: int = 0
    resent: int = 0
    # Faults that struck (the plan says which may; these happened).
    view_raised: int = 0
    kills: dict[str, int] = field(default_factory=dict)
    timers_unfired: int = 0
    server_restarts: int = 0
    send_attempts: int = 0
    send_failures: int = 0
    view_runs: int = 0
    # The end state.
    rows_per_message: dict[int, int] = field(default_factory=dict)
    replies_per_message: dict[int, int] = field(default_factory=dict)  # distinct replies
    transmissions: int = 0
    delivered: int = 0
    bounced: int = 0
    deferrals: int = 0  # delivery attempts that ended deferred
    messages_deferred: int = 0
    suspended: int = 0  # deferred untried: the destination was down
    queue_left: int = 0
    inbound: dict[str, int] | None = None
    outbox: dict[str, int] | None = None
    replayed: int = 0  # deliveries the store answered from its record
    # Time.
    inject_seconds: float = 0.0
    deliver_seconds: float = 0.0
    drain_seconds: float = 0.0
    sendreplies_runs: int = 0

    @property
    def rows(self) -> int:
        return sum(self.rows_per_message.values())

    @property
    def replies(self) -> int:
        return sum(self.replies_per_message.values())

    def _per_message(self, counts: dict[int, int]) -> tuple[int, int]:
        """(messages counted more than once, messages not counted at all)"""
        more = sum(1 for n in range(self.messages) if counts.get(n, 0) > 1)
        missing = sum(1 for n in range(self.messages) if not counts.get(n))
        return more, missing

    def problems(self) -> list[str]:
        """The checks of issue 8 that this run fails; empty when it passes."""
        found = []
        n = self.messages
        more, missing = self._per_message(self.rows_per_message)
        if self.rows != n or more or missing:
            found.append(
                f"{self.rows} rows for {n} messages ({more} handled more than once, "
                f"{missing} not at all)"
            )
        more, missing = self._per_message(self.replies_per_message)
        if self.replies != n or more or missing:
            found.append(
                f"{self.replies} replies for {n} messages ({more} answered more than once, "
                f"{missing} not at all)"
            )
        if self.bounced:
            found.append(f"{self.bounced} bounced")
        if self.delivered != self.injected:
            found.append(f"{self.delivered} of {self.injected} injected delivered")
        if self.queue_left:
            found.append(f"{self.queue_left} left in Postfix's queue")
        if self.inbound is not None:
            unfinished = sum(c for s, c in self.inbound.items() if s != PROCESSED)
            if unfinished or self.inbound.get(PROCESSED, 0) != n:
                found.append(f"stored messages not all {PROCESSED}: {self.inbound}")
        if self.outbox is not None:
            if set(self.outbox) - {"sent"} or self.outbox.get("sent", 0) != n:
                found.append(f"outbox not all sent: {self.outbox}")
        return found

    def format(self) -> str:
        kills = sum(self.kills.values())
        where = ", ".join(f"{p} {self.kills.get(p, 0)}" for p in KILL_POINTS)
        what = "runmailserver" if self.path == "lmtp" else "django-mailpipe"
        rows_more, rows_missing = self._per_message(self.rows_per_message)
        replies_more, replies_missing = self._per_message(self.replies_per_message)
        rate = self.injected / self.deliver_seconds if self.deliver_seconds else 0.0
        lines = [
            f"Fault-injection run: {self.messages} messages, {self.concurrency} at once, "
            f"Postfix -> {self.path} on {self.database}, "
            f"{'with' if self.store else 'WITHOUT'} the store (seed {self.seed})",
            f"  injected    {self.injected} ({self.messages} + {self.resent} re-sent upstream "
            "with one more Received header)",
            f"  view        {self.view_runs} runs; raised on the first attempt "
            f"{self.view_raised} times (plan: {percent(RAISES_PER_BLOCK)}% of messages)",
            f"  kills       {kills} SIGKILLs to {what} ({where}; "
            f"{self.timers_unfired} timers armed in a process that ended first)"
            + (f"; restarted {self.server_restarts} times" if self.path == "lmtp" else ""),
            f"  sends       {self.send_failures} of {self.send_attempts} failed "
            f"(plan: {SEND_FAIL_PERCENT}%)",
            f"  Postfix     {self.delivered} delivered, {self.bounced} bounced, "
            f"{self.queue_left} left in the queue; {self.deferrals} deliveries deferred "
            f"and retried ({self.messages_deferred} messages deferred at least once)"
            + (
                f", {self.suspended} deferred untried while the server was down"
                if self.suspended
                else ""
            ),
            f"  took        {self.deliver_seconds:.1f}s to deliver ({rate:.1f} msg/s; "
            f"injected in {self.inject_seconds:.1f}s)"
            + (
                f", {self.drain_seconds:.1f}s to drain the outbox "
                f"({self.sendreplies_runs} sendreplies runs)"
                if self.store
                else ""
            ),
            f"  rows        {self.rows} for {self.messages} messages ({rows_more} more than "
            f"once, {rows_missing} missing)",
            f"  replies     {self.replies} for {self.messages} messages ({replies_more} more "
            f"than once, {replies_missing} missing); {self.transmissions} transmissions, "
            f"{self.transmissions - self.replies} of them a reply sent again",
        ]
        if self.store:
            lines.append(
                f"  store       inbound {self.inbound}, outbox {self.outbox}; "
                f"{self.replayed} deliveries answered from the record"
            )
        problems = self.problems()
        verdict = "FAIL: " + "; ".join(problems) if problems else "PASS"
        lines.append(f"  result      {verdict}")
        return "\n".join(lines)


# --------------------------------------------------------------------------
# the run


@dataclass
class FaultRun:
    root: Path
    messages: int = 1000
    concurrency: int = 20
    database: str = "postgres"  # or "sqlite"
    path: str = "pipe"  # or "lmtp"
    store: bool = True
    seed: int = 8
    timeout: float | None = None  # for Postfix to finish; by default from the size
    progress: Callable[[str], object] | None = None  # told how it goes, a line at a time
    keep_database: bool = False  # for a look afterwards (PostgreSQL; SQLite's is a file)
    # What the run starts, for a look while it runs.
    runtime: PipeRuntime = field(init=False)
    postfix: Postfix | None = field(init=False, default=None)
    server: ServerProcess | None = field(init=False, default=None)
    watchdog: ServerWatchdog | None = field(init=False, default=None)

    def run(self) -> Figures:
        if self.path not in TRANSPORTS:
            raise HarnessError(f"unknown path {self.path!r}: pipe or lmtp")
        if self.store and not store_available():
            raise HarnessError("mailserver.store is not in this checkout")
        db = self._database()
        self.runtime = runtime = PipeRuntime(
            self.root / "pipe",
            pipe_user(),
            project="faultproject",
            requirements=["psycopg", "psycopg-binary"] if db.engine == "postgres" else [],
        )
        (self.root / "pipe").mkdir(parents=True)
        apps = ["mailserver", "faultproject"] + (["mailserver.store"] if self.store else [])
        db.create()
        try:
            runtime.build(
                {
                    "DATABASES": {"default": db.settings(runtime)},
                    "INSTALLED_APPS": apps,
                    "FAULT_SEED": self.seed,
                    "MAIL_STORE_ROOT": str(runtime.records / "store"),
                    "MAIL_SERVER_WORKERS": self.concurrency,
                }
            )
            self._check(runtime.manage("migrate", "-v0", capture_output=True, text=True))
            return self._deliver(runtime)
        finally:
            if self.watchdog is not None:
                self.watchdog.stop()
            if self.postfix is not None:
                self.postfix.stop()
            if self.server is not None:
                self.server.stop()
            if not self.keep_database:
                db.drop()
            elif self.progress:
                self.progress(f"kept the database: {db.settings(runtime)}")

    def _database(self):
        if self.database == "postgres":
            return PostgresDatabase(f"mailserver_faults_{self.root.name.rsplit('-', 1)[-1]}")
        if self.database == "sqlite":
            return SqliteDatabase()
        raise HarnessError(f"unknown database {self.database!r}: postgres or sqlite")

    def _deliver(self, runtime: PipeRuntime) -> Figures:
        if self.path == "lmtp":
            self.server = ServerProcess(self.root / "server", runtime).start()
            self.watchdog = ServerWatchdog(self.server)
            self.watchdog.start()
        settings = dict(RETRY_SETTINGS)
        settings[f"{TRANSPORTS[self.path]}_destination_concurrency_limit"] = str(self.concurrency)
        self.postfix = postfix = Postfix(
            self.root / "postfix", runtime, mode=self.path, server=self.server, main_cf=settings
        )
        postfix.start()

        injection = Injection.build(self.messages, self.seed)
        tail = MaillogTail(postfix.maillog)
        started = time.monotonic()
        injector = threading.Thread(target=injection.run, args=(postfix.port, self.concurrency))
        injector.start()
        final, deferrals, suspended = self._wait(postfix, tail, injection, injector, started)
        deliver_seconds = time.monotonic() - started

        figures = Figures(
            path=self.path,
            database=self.database,
            store=self.store,
            messages=self.messages,
            concurrency=self.concurrency,
            seed=self.seed,
            injected=len(injection.items),
            resent=sum(1 for _n, copy, _d in injection.items if copy),
            inject_seconds=injection.seconds,
            deliver_seconds=deliver_seconds,
        )
        ours = injection.submitted
        statuses = Counter(final[qid] for qid in ours if qid in final)
        figures.delivered = statuses["sent"]
        figures.bounced = statuses["bounced"]
        figures.deferrals = sum(deferrals[qid] for qid in ours)
        figures.messages_deferred = sum(1 for qid in ours if deferrals[qid])
        figures.suspended = sum(suspended[qid] for qid in ours)
        figures.queue_left = len(postfix.queue())
        if self.store:
            started = time.monotonic()
            figures.sendreplies_runs = self._drain(runtime)
            figures.drain_seconds = time.monotonic() - started
        if self.watchdog is not None:
            figures.server_restarts = self.watchdog.restarts
        self._tally(figures, runtime)
        return figures

    def _wait(self, postfix, tail, injection, injector, started):
        """Until Postfix has logged a final state for every message and its queue is empty."""
        timeout = self.timeout or 120 + self.messages * (0.6 if self.path == "pipe" else 0.3)
        final: dict[str, str] = {}
        deferrals: Counter = Counter()
        suspended: Counter = Counter()
        reported = started
        while True:
            for qid, status, text in tail.read_texts():
                if status != "deferred":
                    final[qid] = status
                elif text.startswith(SUSPENDED):
                    suspended[qid] += 1
                else:
                    deferrals[qid] += 1
            done = not injector.is_alive()
            if done and all(qid in final for qid in injection.submitted):
                if not injection.submitted and injection.errors:
                    raise HarnessError(f"injection failed: {injection.errors[:3]}")
                if not postfix.queue():
                    return final, deferrals, suspended
            now = time.monotonic()
            if now - started > timeout:
                pending = [q for q in injection.submitted if q not in final]
                raise HarnessError(
                    f"after {timeout:.0f}s, {len(pending)} of {len(injection.items)} "
                    f"messages have no final state (e.g. {pending[:5]}):\n"
                    + "\n".join(postfix.log().splitlines()[-30:])
                )
            if self.progress and now - reported >= 10:
                reported = now
                self.progress(
                    f"  {now - started:5.0f}s: {len(final)} of {len(injection.items)} final, "
                    f"{sum(deferrals.values())} deferrals"
                )
            time.sleep(0.1)

    def report(self) -> dict:
        """What faultreport says is in the database."""
        result = self._check(self.runtime.manage("faultreport", capture_output=True, text=True))
        return json.loads(result.stdout.strip().splitlines()[-1])

    def _drain(self, runtime: PipeRuntime, timeout: float = 120) -> int:
        """Run sendreplies, as cron would, until the outbox holds nothing pending."""
        deadline = time.monotonic() + timeout
        runs = 0
        while self.report()["outbox"].get("pending", 0):
            if time.monotonic() > deadline:
                raise HarnessError(f"the outbox still holds pending replies after {timeout}s")
            self._check(runtime.manage("sendreplies", capture_output=True, text=True))
            runs += 1
            time.sleep(0.5)
        return runs

    def _tally(self, figures: Figures, runtime: PipeRuntime) -> None:
        report = self.report()
        figures.rows_per_message = {int(k): v for k, v in report["rows_per_message"].items()}
        figures.inbound = report.get("inbound")
        figures.outbox = report.get("outbox")
        figures.replayed = report.get("replayed", 0)
        ledger = Ledger(runtime.records)
        figures.view_runs = sum(ledger.counts("view").values())
        figures.view_raised = len(ledger.entries("raised"))
        killed = ledger.claims("killed")
        figures.kills = dict(Counter(killed.values()))
        figures.timers_unfired = sum(1 for n in ledger.claims("armed") if killed.get(n) != "timer")
        sent = ledger.entries("sent")
        figures.send_failures = len(ledger.entries("send-failed"))
        figures.send_attempts = figures.send_failures + len(sent)
        figures.transmissions = len(sent)
        distinct: dict[int, set] = {}
        for entry in sent:
            distinct.setdefault(entry["number"], set()).add(entry["message_id"])
        figures.replies_per_message = {n: len(ids) for n, ids in distinct.items()}

    def _check(self, result):
        if result.returncode != 0:
            raise HarnessError(
                f"{' '.join(map(str, result.args[3:4]))} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )
        return result
