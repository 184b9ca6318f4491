#!/usr/bin/env python
"""
The cost of durability (issue 8, "Proof", last bullet): the example help desk
with mailserver.store installed and without, side by side in one run.

    python benchmarks/store.py                   # (a), (b) and (c), SQLite and PostgreSQL
    python benchmarks/store.py --quick           # a few runs and messages: a smoke test
    python benchmarks/store.py --parts a,c       # leave out Postfix (which needs root)
    python benchmarks/store.py --databases sqlite
    python benchmarks/store.py --strict          # a part or database left out is an error

One view throughout, the example's ``tickets.mailers.open_ticket``: it
writes a row (a ticket) and returns a reply, which Django's file e-mail
backend writes out; without the store at once, with it through the outbox
(written in the view's transaction, sent after the commit). Every message
is a new one (its own Message-ID): the store answers a message it has seen
from its record, without running the view. Every delivery must open one
ticket and write one reply, or the script stops.

Every database is new for the run: a SQLite file in a temporary directory,
or a PostgreSQL database at 127.0.0.1:5432 (user postgres, no password)
created for the run and dropped at its end; with and without the store each
have their own. DEBUG is off, as in production, and runmailserver keeps
its database connections (CONN_MAX_AGE), as contrib/README.md advises.

  (a) django-mailpipe, one process per message as an MTA's pipe runs it,
      with the store and without, on each database: the four variants run
      round robin (the first rotating each round) after untimed rounds, so
      that drift hits them alike. Wall time (median, p90) and CPU time
      (user + sys of the child, from os.wait4). Target: with / without
      <= 1.10 on the median wall time. Then ``-X importtime``: what the pipe
      imports with the store that it does not without.

  (b) Postfix -> lmtp(8) -> runmailserver, end to end through a real
      Postfix, built by the MTA tests' harness (tests/mta/harness.py) from
      contrib/postfix/lmtp: one runmailserver (as the pipe user, from the
      harness's virtualenv) and one Postfix per variant, messages injected
      over SMTP and counted off the maillog by benchmarks/mta.py's run(),
      in rounds alternating the variants. Target: with / without >= 0.90
      in messages per second (median round); beside it, the server's CPU
      time per message and how busy that kept a CPU. Needs root, Postfix
      and the pipe user (.ci/install-mtas.sh).

  (c) runmailserver alone: one server per variant (this Python), loaded
      over LMTP on a unix socket by benchmarks/server.py's client, in
      rounds alternating the variants; messages per second, median round.

The machine's load average is printed with each part: on a shared machine,
read the figures beside it.

Nothing in the repository is written to.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EXAMPLE = ROOT / "example"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import mta as mta_bench  # noqa: E402  (benchmarks/mta.py)
import server as server_bench  # noqa: E402  (benchmarks/server.py)

SENDER = "ann@example.org"
RECIPIENT = "help@bugs.example.com"
TEMPLATE = (EXAMPLE / "messages" / "new-ticket.eml").read_bytes()
TARGET_PIPE = 1.10  # (a) with / without, median wall time: at most
TARGET_POSTFIX = 0.90  # (b) with / without, messages per second: at least
REPLY_END = b"\n" + b"-" * 79 + b"\n"
POSTGRES = {"HOST": "127.0.0.1", "PORT": "5432", "USER": "postgres"}


class BenchError(Exception):
    pass


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


def message(tag: str) -> bytes:
    """The example's new ticket, as a message of its own."""
    return TEMPLATE.replace(b"<fire-1@example.org>", f"<{tag}@example.org>".encode(), 1)


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


# -- variants and their databases ---------------------------------------------------


@dataclasses.dataclass
class Variant:
    """The help desk on one database, with the store or without."""

    database: str  # "sqlite" or "postgres"
    store: bool

    @property
    def name(self) -> str:
        return f"{self.database}{'+store' if self.store else ''}"

    @property
    def label(self) -> str:
        return f"{self.database}, {'with the store' if self.store else 'without'}"

    def installed_apps(self) -> list[str]:
        apps = ["django.contrib.contenttypes", "django.contrib.auth", "mailserver", "tickets"]
        return [*apps[:3], "mailserver.store", apps[3]] if self.store else apps


def variants(databases: list[str]) -> list[Variant]:
    return [Variant(db, store) for db in databases for store in (False, True)]


def postgres_missing() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        psycopg.connect(**_pg_params("postgres"), connect_timeout=3).close()
    except psycopg.Error as exc:
        return f"no PostgreSQL at 127.0.0.1:5432 for user postgres ({exc})"
    return None


def _pg_params(name: str) -> dict:
    return {
        "host": POSTGRES["HOST"],
        "port": POSTGRES["PORT"],
        "user": POSTGRES["USER"],
        "dbname": name,
    }


class Databases:
    """The run's databases: made new, counted from outside, dropped at the end."""

    def __init__(self):
        self.token = uuid.uuid4().hex[:8]
        self.created: list[str] = []
        self._connections: dict = {}

    def settings(self, variant: Variant, part: str, directory: Path) -> dict:
        """DATABASES["default"] for ``variant`` in ``part``; a new database."""
        if variant.database == "sqlite":
            return {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(directory / f"{variant.name}.sqlite3"),
            }
        import psycopg

        name = f"storebench_{self.token}_{part}_{variant.name.replace('+', '_')}"
        with psycopg.connect(**_pg_params("postgres"), autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return {"ENGINE": "django.db.backends.postgresql", "NAME": name, **POSTGRES}

    def tickets(self, config: dict) -> int:
        """How many tickets the help desk on this database has opened."""
        sql = "SELECT COUNT(*) FROM tickets_ticket"
        if config["ENGINE"].endswith("sqlite3"):
            with sqlite3.connect(config["NAME"]) as db:
                return db.execute(sql).fetchone()[0]
        db = self._connections.get(config["NAME"])
        if db is None:
            import psycopg

            db = psycopg.connect(**_pg_params(config["NAME"]), autocommit=True)
            self._connections[config["NAME"]] = db
        return db.execute(sql).fetchone()[0]

    def drop_all(self) -> None:
        for db in self._connections.values():
            db.close()
        if not self.created:
            return
        import psycopg

        with psycopg.connect(**_pg_params("postgres"), autocommit=True) as db:
            for name in self.created:
                db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def settings_text(variant: Variant, database: dict, data: Path, base: str | None) -> str:
    """A settings module for ``variant``: the example's, or (``base``) a harness project's."""
    lines = [
        f'"""benchmarks/store.py: the help desk, {variant.label}. Generated."""',
        "import sys",
        "",
    ]
    if base is None:
        lines += [
            f"if {str(EXAMPLE)!r} not in sys.path:",
            f"    sys.path.append({str(EXAMPLE)!r})",
            "from exampleproject.settings import *  # noqa: E402,F403",
        ]
    else:
        lines += [f"from {base} import *  # noqa: F403", "ROOT_MAILCONF = 'storebench_mailconf'"]
    lines += [
        "DEBUG = False",
        f"DATABASES = {{'default': {database!r}}}",
        f"INSTALLED_APPS = {variant.installed_apps()!r}",
        "DEFAULT_AUTO_FIELD = 'django.db.models.BigAutoField'",
        "MAIL_ATOMIC_REQUESTS = True",
        "MAILER_DAEMON_ADDRESS = 'mailer-daemon@example.com'",
        # Replies to files, as MAILERS on Django 6.1+ (which refuses the old
        # names beside it), as EMAIL_BACKEND before.
        "import django",
        "if django.VERSION >= (6, 1):",
        "    # The base's old names (the MTA tests' project) would be refused.",
        "    for _old in ('EMAIL_BACKEND', 'EMAIL_FILE_PATH'):",
        "        globals().pop(_old, None)",
        "    MAILERS = {'default': {",
        "        'BACKEND': 'django.core.mail.backends.filebased.EmailBackend',",
        f"        'OPTIONS': {{'file_path': {str(data / 'sent')!r}}},",
        "    }}",
        "else:",
        "    EMAIL_BACKEND = 'django.core.mail.backends.filebased.EmailBackend'",
        f"    EMAIL_FILE_PATH = {str(data / 'sent')!r}",
        f"MAIL_STORE_ROOT = {str(data / 'store')!r}",
        # As runmailserver should run in production (docs/howto/lmtp.md): its
        # worker threads keep their connections between messages, where a
        # pipe's process has one message to handle.
        "if 'runmailserver' in sys.argv:",
        "    DATABASES['default']['CONN_MAX_AGE'] = 600",
    ]
    return "\n".join(lines) + "\n"


def replies(data: Path) -> int:
    """
    The replies the file e-mail backend wrote under ``data``: counted by the
    line it writes after each, since two connections may share a file (its
    name is the time to the second and the connection's id()).
    """
    return sum(path.read_bytes().count(REPLY_END) for path in (data / "sent").iterdir())


def child_env() -> dict:
    """This checkout first on the path, and nothing else that changes a child."""
    env = dict(os.environ)
    for name in (
        "DJANGO_SETTINGS_MODULE",
        "PYTHONPROFILEIMPORTTIME",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONSTARTUP",
        "SENDER",  # Exim's variables, which the pipe reads
        "RECIPIENT",
        "LOCAL_PART",
        "DOMAIN",
        "MESSAGE_ID",
    ):
        env.pop(name, None)
    env["PYTHONPATH"] = str(ROOT)
    return env


class Local:
    """Parts (a) and (c): the variants run by this Python, as this user."""

    def __init__(self, tmp: Path, databases: Databases, chosen: list[Variant]):
        self.tmp = tmp
        self.databases = databases
        self.variants = chosen
        self.env = child_env()
        self.config: dict[str, dict] = {}
        self.module: dict[str, str] = {}
        self.data: dict[str, Path] = {}

    def prepare(self) -> None:
        found = subprocess.run(
            [sys.executable, "-c", "import mailserver; print(mailserver.__file__)"],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if not Path(found).is_relative_to(ROOT):
            raise BenchError(f"children import mailserver from {found}, not from {ROOT}")
        for variant in self.variants:
            data = self.tmp / variant.name
            (data / "sent").mkdir(parents=True)
            module = f"storebench_{variant.name.replace('+', '_')}"
            config = self.databases.settings(variant, "local", data)
            (self.tmp / f"{module}.py").write_text(settings_text(variant, config, data, None))
            self.config[variant.name], self.module[variant.name] = config, module
            self.data[variant.name] = data
            self.manage(variant, "migrate", "--verbosity", "0")

    def manage(self, variant: Variant, *args: str) -> None:
        done = subprocess.run(
            [sys.executable, str(EXAMPLE / "manage.py"), *args, *self.where(variant)],
            cwd=self.tmp,
            env=self.env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise BenchError(f"{' '.join(args)} ({variant.name}) failed:\n{done.stderr}")

    def where(self, variant: Variant) -> list[str]:
        return ["--settings", self.module[variant.name], "--pythonpath", str(self.tmp)]

    def counts(self, variant: Variant) -> tuple[int, int]:
        """(tickets, replies written) of ``variant`` so far."""
        return self.databases.tickets(self.config[variant.name]), replies(self.data[variant.name])


# -- (a) django-mailpipe --------------------------------------------------------------


def mailpipe_script() -> str:
    """The console script an MTA runs: the interpreter's own, not a version manager's shim."""
    for directory in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        script = Path(directory) / "django-mailpipe"
        if script.is_file() and os.access(script, os.X_OK):
            return str(script)
    raise BenchError("django-mailpipe is not installed beside this Python: pip install -e .")


class Pipe:
    """One process per message, as Postfix's pipe(8) runs django-mailpipe."""

    def __init__(self, local: Local):
        self.local = local
        self.script = mailpipe_script()
        self.sequence = 0

    def argv(self, variant: Variant, *extra: str) -> list[str]:
        return [
            self.script,
            *self.local.where(variant),
            "--sender",
            SENDER,
            "--recipient",
            RECIPIENT,
            *extra,
        ]

    def spawn(self, argv: list[str], raw: bytes, env: dict | None = None):
        """Run ``argv`` on ``raw``: (exit status, wall s, CPU s, peak RSS KiB, output)."""
        tmp = self.local.tmp
        (tmp / "message.eml").write_bytes(raw)
        with (
            open(tmp / "message.eml", "rb") as stdin,
            open(tmp / "child.out", "wb") as out,
        ):
            started = time.perf_counter()
            child = subprocess.Popen(
                argv,
                stdin=stdin,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=tmp,
                env=env or self.local.env,
            )
            _, status, usage = os.wait4(child.pid, 0)
            wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
        output = (tmp / "child.out").read_bytes()
        return child.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, output

    def deliver(self, variant: Variant, *extra: str, env: dict | None = None):
        """One delivery of a new message, which must open a ticket and write a reply."""
        self.sequence += 1
        raw = message(f"pipe-{self.sequence}-{variant.name}")
        before = self.local.counts(variant)
        argv = self.argv(variant, *extra)
        status, wall, cpu, rss, output = self.spawn(argv, raw, env)
        after = self.local.counts(variant)
        if status != 0 or after != (before[0] + 1, before[1] + 1):
            raise BenchError(
                f"django-mailpipe ({variant.label}) did not deliver: exit {status}, "
                f"{after[0] - before[0]} ticket(s), {after[1] - before[1]} reply(ies)\n"
                f"  $ {' '.join(argv)}\n  {output.decode(errors='replace')[-3000:]}"
            )
        return wall, cpu, rss


def part_a(local: Local, runs: int, warmup: int, importtime: bool) -> dict:
    pipe = Pipe(local)
    chosen = local.variants
    print(f"(a) django-mailpipe, one process per message: {runs} runs each, round robin")
    print(f"    after {warmup} untimed round(s); {load_average()} at the start")
    print(f"    {pipe.script} --settings ... --sender {SENDER} --recipient {RECIPIENT}")
    samples = {v.name: {"wall": [], "cpu": [], "rss": []} for v in chosen}
    reference = {"wall": [], "cpu": []}
    for round_no in range(warmup + runs):
        shift = round_no % len(chosen)
        for variant in chosen[shift:] + chosen[:shift]:
            wall, cpu, rss = pipe.deliver(variant)
            if round_no >= warmup:
                for key, value in (("wall", wall), ("cpu", cpu), ("rss", rss)):
                    samples[variant.name][key].append(value)
        status, wall, cpu, _, _ = pipe.spawn([sys.executable, "-c", "pass"], b"")
        if status == 0 and round_no >= warmup:
            reference["wall"].append(wall)
            reference["cpu"].append(cpu)
        if sys.stderr.isatty():
            print(
                f"\r    round {round_no + 1}/{warmup + runs}", end="", file=sys.stderr, flush=True
            )
    if sys.stderr.isatty():
        print("\r" + " " * 30 + "\r", end="", file=sys.stderr, flush=True)

    head = (
        f"    {'variant':28} {'wall median':>11} {'p90':>8} {'min':>8} "
        f"{'CPU median':>10} {'p90':>8} {'peak RSS':>9}"
    )
    print(head)
    print("    " + "-" * (len(head) - 4))
    rows = [(v.label, samples[v.name]) for v in chosen]
    rows.append(("python -c pass (reference)", {**reference, "rss": []}))
    for label, s in rows:
        rss = f"{statistics.median(s['rss']) / 1024:7.1f}MB" if s["rss"] else ""
        print(
            f"    {label:28} {statistics.median(s['wall']) * 1000:9.1f}ms "
            f"{p90(s['wall']) * 1000:6.1f}ms {min(s['wall']) * 1000:6.1f}ms "
            f"{statistics.median(s['cpu']) * 1000:8.1f}ms {p90(s['cpu']) * 1000:6.1f}ms {rss:>9}"
        )
    ratios = {}
    for database in dict.fromkeys(v.database for v in chosen):
        plain, stored = samples[database], samples[f"{database}+store"]
        wall = statistics.median(stored["wall"]) / statistics.median(plain["wall"])
        ratios[database] = wall
        print(
            f"    {database}: with / without = {wall:.3f} wall median "
            f"(target <= {TARGET_PIPE:.2f}: {'PASS' if wall <= TARGET_PIPE else 'MISS'}), "
            f"{p90(stored['wall']) / p90(plain['wall']):.3f} p90, "
            f"{min(stored['wall']) / min(plain['wall']):.3f} fastest, "
            f"{statistics.median(stored['cpu']) / statistics.median(plain['cpu']):.3f} CPU median; "
            f"+{(statistics.median(stored['wall']) - statistics.median(plain['wall'])) * 1000:.1f}"
            " ms per message"
        )
    print(f"    {load_average()} at the end")
    if importtime:
        imports(pipe, chosen)
    return ratios


SETUP_PROBE = """\
import os, sys, time
sys.path.insert(0, sys.argv[1])
os.environ["DJANGO_SETTINGS_MODULE"] = sys.argv[2]
started = time.perf_counter()
import django
django.setup()
print(round((time.perf_counter() - started) * 1000, 2))
print(" ".join(sys.modules))
"""


def imports(pipe: Pipe, chosen: list[Variant]) -> None:
    """What the pipe imports with the store that it does not without (min self time of 3)."""
    database = chosen[0].database
    plain, stored = (Variant(database, False), Variant(database, True))
    found = {}
    for variant in (plain, stored):
        best: dict[str, int] = {}
        for n in range(3):
            log = pipe.local.tmp / f"importtime-{variant.name}-{n}.log"
            env = dict(pipe.local.env, PYTHONPROFILEIMPORTTIME="1")
            # The pipe points fd 2 at its --log-file before Django is set up:
            # what it imported before that went to its first stderr.
            pipe.deliver(variant, "--log-file", str(log), env=env)
            text = (pipe.local.tmp / "child.out").read_text() + log.read_text()
            for line in text.splitlines():
                fields = line[len("import time:") :].split("|")
                if not line.startswith("import time:") or len(fields) != 3:
                    continue
                if not fields[0].strip().isdigit():
                    continue
                name = fields[2].strip()
                best[name] = min(best.get(name, 1 << 60), int(fields[0]))
        found[variant.name] = best
    extra = {n: us for n, us in found[stored.name].items() if n not in found[plain.name]}
    total = sum(found[stored.name].values()), sum(found[plain.name].values())
    print(
        f"    -X importtime ({database}): with the store the pipe imports {len(extra)} modules "
        f"more (that the import statement loads), {sum(extra.values()) / 1000:.1f} ms "
        f"self time (all such imports: "
        f"{total[0] / 1000:.1f} ms against {total[1] / 1000:.1f} ms); the largest:"
    )
    for name, us in sorted(extra.items(), key=lambda item: -item[1])[:10]:
        print(f"      {us / 1000:6.2f} ms  {name}")
    # -X importtime does not see what Django imports with importlib.import_module
    # (apps, their models): time django.setup() itself.
    setup = {}
    for variant in (plain, stored):
        runs = []
        for _ in range(5):
            done = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    SETUP_PROBE,
                    str(pipe.local.tmp),
                    pipe.local.module[variant.name],
                ],
                env=pipe.local.env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split("\n", 1)
            runs.append((float(done[0]), set(done[1].split())))
        setup[variant.name] = (min(ms for ms, _ in runs), runs[0][1])
    more = sorted(setup[stored.name][1] - setup[plain.name][1] - {pipe.local.module[stored.name]})
    print(
        f"    django.setup() ({database}, min of 5 processes): {setup[stored.name][0]:.1f} ms with "
        f"the store, {setup[plain.name][0]:.1f} ms without; {len(more)} modules more: "
        f"{' '.join(more)}"
    )


# -- (c) runmailserver alone -----------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system time of a running process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def part_c(local: Local, messages: int, rounds: int, connections: int, workers: int) -> dict:
    chosen = local.variants
    print(
        f"(c) runmailserver alone: {messages} messages a round over {connections} LMTP "
        f"connections, {rounds} round(s), --workers {workers}; {load_average()} at the start"
    )
    servers: dict[str, subprocess.Popen] = {}
    sockets: dict[str, str] = {}
    logs = []
    try:
        for variant in chosen:
            sockets[variant.name] = str(local.tmp / f"{variant.name}.sock")
            log = open(local.tmp / f"server-{variant.name}.log", "wb")
            logs.append(log)
            servers[variant.name] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "django",
                    "runmailserver",
                    *local.where(variant),
                    "--bind",
                    f"unix:{sockets[variant.name]}",
                    "--workers",
                    str(workers),
                ],
                cwd=local.tmp,
                env=local.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        for variant in chosen:
            server_bench.wait_listening(sockets[variant.name], servers[variant.name])
        sequence = 0

        def load(variant: Variant, count: int) -> tuple[float, float]:
            """Messages per second, and the server's CPU time per message."""
            nonlocal sequence
            raws = [message(f"lmtp-{sequence + i}-{variant.name}") for i in range(count)]
            sequence += count
            before = local.counts(variant)
            cpu = cpu_seconds(servers[variant.name].pid)
            try:
                seconds = asyncio.run(
                    server_bench.load(
                        sockets[variant.name],
                        count,
                        connections,
                        sender=SENDER,
                        recipient=RECIPIENT,
                        raws=raws,
                    )
                )
            except (OSError, RuntimeError) as exc:
                log = (local.tmp / f"server-{variant.name}.log").read_text(errors="replace")
                raise BenchError(f"runmailserver ({variant.label}): {exc}\n{log[-3000:]}") from None
            cpu = cpu_seconds(servers[variant.name].pid) - cpu
            after = local.counts(variant)
            if after != (before[0] + count, before[1] + count):
                raise BenchError(
                    f"runmailserver ({variant.label}): {count} messages made "
                    f"{after[0] - before[0]} tickets and {after[1] - before[1]} replies"
                )
            return count / seconds, cpu / count

        for variant in chosen:  # warm up: caches, connections, the threads
            load(variant, min(100, messages))
        rates: dict[str, list[float]] = {v.name: [] for v in chosen}
        cpus: dict[str, list[float]] = {v.name: [] for v in chosen}
        for round_no in range(rounds):
            shift = round_no % len(chosen)
            for variant in chosen[shift:] + chosen[:shift]:
                rate, cpu = load(variant, messages)
                rates[variant.name].append(rate)
                cpus[variant.name].append(cpu)
        peaks = {name: server_bench.rss_kib(s.pid, "VmHWM") for name, s in servers.items()}
    finally:
        for process in servers.values():
            process.send_signal(signal.SIGTERM)
        for process in servers.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()
    print(f"    {'variant':28} {'msg/s':>8} {'CPU/msg':>8}   rounds                 peak RSS")
    for variant in chosen:
        values = rates[variant.name]
        print(
            f"    {variant.label:28} {statistics.median(values):8.0f} "
            f"{statistics.median(cpus[variant.name]) * 1000:6.1f}ms   "
            f"{str([round(r) for r in values]):22} {peaks[variant.name] / 1024:6.1f}MB"
        )
    print("    (CPU/msg: the server's user + system time per message, from /proc)")
    ratios = {}
    for database in dict.fromkeys(v.database for v in chosen):
        ratio = statistics.median(rates[f"{database}+store"]) / statistics.median(rates[database])
        ratios[database] = ratio
        print(f"    {database}: with / without = {ratio:.3f} messages per second")
    print(f"    {load_average()} at the end")
    return ratios


# -- (b) Postfix -> LMTP -> runmailserver ---------------------------------------------

VIEWS = {
    "helpdesk": "the help desk: a ticket and a reply",
    # mta.py's view, with which Postfix's intake bounded the way: run() still
    # checks that every message was delivered (status=sent).
    "ok": "a view that writes a line to a file and replies nothing",
}

MAILCONF = '''\
"""benchmarks/store.py: the help desk at mail.test, the harness's domain. Generated."""
from mailserver.mailbox import include, mailbox

from mtaproject import views

mailpatterns = [
    # --mta-view ok: the MTA tests' view that does nothing (mta.py's).
    mailbox(r"^ok@mail\\.test$", views.ok, name="ok"),
    mailbox(r"@mail\\.test$", include("tickets.mailbox", namespace="tickets")),
]
'''


def copy_distributions(runtime, names: list[str]) -> None:
    """
    Distributions the help desk needs beyond the app's (psycopg for
    PostgreSQL) into the harness's virtualenv; a compiled one only when
    Debian's interpreter has the ABI of this one.
    """
    from tests.mta.harness import _dependency_closure

    def ask(code: str) -> str:
        return subprocess.run(
            [str(runtime.python), "-c", code], check=True, capture_output=True, text=True
        ).stdout.strip()

    purelib = Path(ask("import sysconfig; print(sysconfig.get_path('purelib'))"))
    same_abi = ask("import sysconfig; print(sysconfig.get_config_var('SOABI'))") == (
        sysconfig.get_config_var("SOABI")
    )
    for dist in _dependency_closure(names):
        base = Path(dist.locate_file("")).resolve()
        files = [Path(dist.locate_file(entry)).resolve() for entry in dist.files or []]
        if not same_abi and any(src.suffix == ".so" for src in files):
            continue  # psycopg without its binary build: libpq through ctypes
        for src in files:
            if not src.is_relative_to(base) or not src.is_file():
                continue
            dst = purelib / src.relative_to(base)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)


def part_b(
    databases: Databases,
    chosen: list[Variant],
    messages: int,
    rounds: int,
    connections: int,
    timeout: float,
    keep: bool,
    view: str = "helpdesk",
) -> dict:
    from tests.mta.harness import (
        TEST_DOMAIN,
        HarnessError,
        PipeRuntime,
        Postfix,
        ServerProcess,
        make_world_readable,
        new_root,
        pipe_user,
    )

    recipient = f"{'help' if view == 'helpdesk' else 'ok'}@{TEST_DOMAIN}"
    print(
        f"(b) Postfix -> lmtp(8) -> runmailserver, end to end: {messages} messages a round "
        f"to {recipient} ({VIEWS[view]}), {connections} SMTP connections, {rounds} round(s); "
        f"{load_average()} at the start"
    )
    root = new_root("storebench")
    instances: list[Postfix] = []
    servers: list = []
    try:
        started = time.monotonic()
        (root / "pipe").mkdir()
        runtime = PipeRuntime(root / "pipe", pipe_user()).build()
        for project in ("tickets", "exampleproject"):
            shutil.copytree(
                EXAMPLE / project,
                runtime.site / project,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
        (runtime.site / "storebench_mailconf.py").write_text(MAILCONF)
        if any(v.database == "postgres" for v in chosen):
            copy_distributions(runtime, ["psycopg", "psycopg-binary"])
        subprocess.run(
            [str(runtime.python), "-m", "compileall", "-q", "-j0", str(runtime.root)], check=True
        )
        make_world_readable(runtime.root)
        owner = runtime.records.stat()
        postfix: dict[str, Postfix] = {}
        config: dict[str, dict] = {}
        server_of: dict[str, subprocess.Popen] = {}
        for variant in chosen:
            slug = variant.name.replace("+", "_")
            data = root / f"data-{slug}"
            (data / "sent").mkdir(parents=True)
            for path in (data, data / "sent"):
                os.chown(path, owner.st_uid, owner.st_gid)
            config[variant.name] = databases.settings(variant, "postfix", data)
            mine = dataclasses.replace(runtime, settings_module=f"storebench_{slug}")
            (mine.site / f"{mine.settings_module}.py").write_text(
                settings_text(variant, config[variant.name], data, runtime.settings_module)
            )
            done = mine.run_as_user(
                [
                    str(mine.python),
                    "-m",
                    "django",
                    "migrate",
                    "--verbosity=0",
                    f"--pythonpath={mine.site}",
                    f"--settings={mine.settings_module}",
                ],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise BenchError(f"migrate ({variant.name}) as {mine.user} failed:\n{done.stderr}")
            server = ServerProcess(root / f"server-{slug}", mine).start()
            servers.append(server)
            server_of[variant.name] = server.process
            instance = Postfix(root / f"postfix-{slug}", mine, mode="lmtp", server=server)
            instances.append(instance)
            instance.start()
            postfix[variant.name] = instance
        print(
            f"    set up in {time.monotonic() - started:.1f}s: Postfix "
            f"{os.popen('/usr/sbin/postconf -dh mail_version').read().strip()}, "
            f"{runtime.python} as {runtime.user}"
        )

        def measure(variant: Variant, count: int, tag: str) -> dict:
            before = databases.tickets(config[variant.name])
            pid = server_of[variant.name].pid
            server_cpu = cpu_seconds(pid)
            result = mta_bench.run(
                postfix[variant.name], count, connections, tag, timeout, recipient=recipient
            )
            result["server_cpu"] = (cpu_seconds(pid) - server_cpu) / count
            opened = databases.tickets(config[variant.name]) - before
            if view == "helpdesk" and opened != count:
                raise BenchError(f"{variant.label}: {count} messages sent, {opened} tickets")
            return result

        for variant in chosen:
            measure(variant, min(10, messages), f"warm-{variant.name}")
        results: dict[str, list[dict]] = {v.name: [] for v in chosen}
        for round_no in range(rounds):
            shift = round_no % len(chosen)
            for variant in chosen[shift:] + chosen[:shift]:
                results[variant.name].append(
                    measure(variant, messages, f"{variant.name}-{round_no}")
                )
    except HarnessError as exc:
        raise BenchError(str(exc)) from None
    finally:
        for instance in instances:
            instance.stop()
        for server in servers:
            server.stop()
        if keep:
            print(f"    kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(
        f"    {'variant':28} {'msg/s':>8} {'intake':>8} {'lag':>6} {'CPU/msg':>8} {'busy':>5}"
        f"   rounds"
    )
    for variant in chosen:
        rows = results[variant.name]
        rates = [r["rate"] for r in rows]
        intake = statistics.median(r["count"] / r["injection"] for r in rows)
        lag = statistics.median(r["seconds"] - r["injection"] for r in rows)
        server_cpu = statistics.median(r["server_cpu"] for r in rows)
        busy = statistics.median(r["server_cpu"] * r["rate"] for r in rows)
        print(
            f"    {variant.label:28} {statistics.median(rates):8.1f} {intake:8.1f} {lag:5.2f}s "
            f"{server_cpu * 1000:6.2f}ms {busy:5.2f}   {[round(r, 1) for r in rates]}"
        )
    print(
        "    (intake: messages per second Postfix took in over SMTP; lag: from the end of "
        "that\n     to the last status=sent. A lag near zero means the way kept up with "
        "Postfix's intake,\n     which then bounds its figure. CPU/msg: runmailserver's "
        "user + system time per\n     message, from /proc; busy: that times msg/s, the CPUs "
        "it kept busy. Its views\n     run on one CPU at a time (the GIL): near 1.0, the "
        "server is what bounds the figure.)"
    )
    ratios = {}
    for database in dict.fromkeys(v.database for v in chosen):
        stored = statistics.median(r["rate"] for r in results[f"{database}+store"])
        plain = statistics.median(r["rate"] for r in results[database])
        ratios[database] = stored / plain
        print(
            f"    {database}: with / without = {stored / plain:.3f} messages per second "
            f"(target >= {TARGET_POSTFIX:.2f}: "
            f"{'PASS' if stored / plain >= TARGET_POSTFIX else 'MISS'})"
        )
    print(f"    {load_average()} at the end")
    return ratios


# -- main -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few runs and messages")
    parser.add_argument("--parts", default="a,b,c", help="which parts (a,b,c)")
    parser.add_argument(
        "--databases", default="sqlite,postgres", help="which databases (sqlite,postgres)"
    )
    parser.add_argument("--runs", type=int, default=30, help="(a) timed runs per variant (30)")
    parser.add_argument("--warmup", type=int, default=2, help="(a) untimed rounds first (2)")
    parser.add_argument(
        "--mta-messages", type=int, default=200, help="(b) messages per variant and round (200)"
    )
    parser.add_argument("--mta-rounds", type=int, default=3, help="(b) rounds (3)")
    parser.add_argument(
        "--mta-view",
        choices=sorted(VIEWS),
        default="helpdesk",
        help="(b) the view: the help desk, or mta.py's that does nothing (ok)",
    )
    parser.add_argument(
        "--server-messages", type=int, default=1000, help="(c) messages per variant and round"
    )
    parser.add_argument("--server-rounds", type=int, default=3, help="(c) rounds (3)")
    parser.add_argument("--connections", type=int, default=4, help="(b), (c): at once (4)")
    parser.add_argument("--workers", type=int, default=4, help="(c) runmailserver --workers")
    parser.add_argument("--timeout", type=float, default=600, help="(b) per round, in seconds")
    parser.add_argument(
        "--strict", action="store_true", help="fail when a part or database cannot run here"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.warmup = 3, 1
        args.mta_messages, args.mta_rounds = 20, 1
        args.server_messages, args.server_rounds = 40, 1
    parts = [p for p in args.parts.split(",") if p]
    chosen_databases = [d for d in args.databases.split(",") if d]
    if set(parts) - {"a", "b", "c"} or set(chosen_databases) - {"sqlite", "postgres"}:
        parser.error("--parts takes a, b, c; --databases sqlite, postgres")

    skipped = []
    if "postgres" in chosen_databases:
        reason = postgres_missing()
        if reason:
            chosen_databases.remove("postgres")
            skipped.append(f"PostgreSQL: {reason}")
    if "b" in parts:
        from tests.mta.harness import missing_prerequisites

        reason = missing_prerequisites("postfix") or missing_prerequisites("server")
        if reason:
            parts.remove("b")
            skipped.append(f"(b) Postfix: {reason}")
    for line in skipped:
        print(f"left out: {line}")
    if skipped and args.strict:
        return 2
    if not chosen_databases:
        print("no database to run on", file=sys.stderr)
        return 2

    import django

    chosen = variants(chosen_databases)
    print(
        f"The cost of durability: the example help desk (tickets.mailers.open_ticket: one "
        f"ticket, one reply)\n  with mailserver.store / without, on {', '.join(chosen_databases)}; "
        f"Python {sys.version.split()[0]}, Django {django.__version__}; {load_average()}\n"
    )
    tmp = Path(tempfile.mkdtemp(prefix="storebench-"))
    databases = Databases()
    summary = []
    try:
        if "a" in parts or "c" in parts:
            local = Local(tmp, databases, chosen)
            local.prepare()
        if "a" in parts:
            ratios = part_a(local, args.runs, args.warmup, importtime=not args.quick)
            summary += [f"(a) pipe, {db}: {r:.3f} (<= {TARGET_PIPE})" for db, r in ratios.items()]
            print()
        if "b" in parts:
            ratios = part_b(
                databases,
                chosen,
                args.mta_messages,
                args.mta_rounds,
                args.connections,
                args.timeout,
                args.keep,
                args.mta_view,
            )
            summary += [
                f"(b) Postfix+LMTP, {db}: {r:.3f} (>= {TARGET_POSTFIX})" for db, r in ratios.items()
            ]
            print()
        if "c" in parts:
            ratios = part_c(
                local, args.server_messages, args.server_rounds, args.connections, args.workers
            )
            summary += [f"(c) runmailserver, {db}: {r:.3f}" for db, r in ratios.items()]
            print()
    except BenchError as exc:
        sys.stdout.flush()
        print(f"\nBENCHMARK FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        databases.drop_all()
        if args.keep:
            print(f"kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("with the store / without:")
    for line in summary:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
