#!/usr/bin/env python
"""
The warm path against its floors and ceilings (issue 5, "Benchmark").

    python benchmarks/server.py                 # 30 runs per variant, 3,000 messages per load
    python benchmarks/server.py --quick         # a smoke test
    python benchmarks/server.py --runs 60 --messages 6000 --connections 8

Part 1, one process per message, measured round robin so that drift hits
every variant alike (wall time, median and p90):

  (a) floor      python -c pass: what any process per message costs at least
  (b) relay      django-mailpipe --via unix:... to a running runmailserver
  (c) in-process django-mailpipe --settings ...: Django set up for each message

  target: b/a <= 2.5

Part 2, messages per second over several LMTP connections from one client
process (this one, asyncio, no pipelining), each message one MAIL, RCPT,
DATA and a reply, in alternating rounds (the median round counts) against

  (d) runmailserver with a trivial view (tests.server.settings, route ok@)
  (e) a do-nothing aiosmtpd LMTP server (answers 250 after DATA): the
      ceiling for a Python LMTP server on this machine

  target: d >= 1,000 messages/s and d/e >= 1/3; with runmailserver's peak
  RSS (VmHWM) beside its RSS when idle after start.

Both servers are separate processes; runmailserver logs its line per
recipient to a file, as in production. The Postfix pipe-vs-lmtp comparison
needs the MTA harness (tests/mta) and is not measured here.

Standard library and the project only; nothing in the repository is written to.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SENDER = "bench@example.org"
RECIPIENT = "ok@bench.example"
MESSAGE = (
    b"From: Bench <bench@example.org>\n"
    b"To: <ok@bench.example>\n"
    b"Subject: benchmark message\n"
    b"Date: Thu, 01 Jan 2026 00:00:00 +0000\n"
    b"Message-ID: <bench-1@example.org>\n"
    b"MIME-Version: 1.0\n"
    b"Content-Type: text/plain; charset=utf-8\n"
    b"\n" + b"A line of an ordinary short message body, nothing more.\n" * 12
)


# The do-nothing server (e), run as: server.py --null-server ADDRESS --------------------


def null_server(address: str) -> None:
    from aiosmtpd.lmtp import LMTP

    from mailserver.wire import parse_endpoint

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            return "\r\n".join("250 2.0.0 OK" for _ in envelope.rcpt_tos)

    async def main():
        loop = asyncio.get_running_loop()
        endpoint = parse_endpoint(address)
        handler = Handler()
        await loop.create_unix_server(
            lambda: LMTP(handler, hostname="bench", loop=loop), endpoint.path
        )
        stop = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
        print("ready", flush=True)
        await stop

    asyncio.run(main())


# The load client ---------------------------------------------------------------------


async def _reply(reader: asyncio.StreamReader) -> bytes:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        if line[3:4] != b"-":
            return line


async def load(
    path: str,
    messages: int,
    connections: int,
    *,
    sender: str = SENDER,
    recipient: str = RECIPIENT,
    raws: Sequence[bytes] | None = None,
) -> float:
    """
    Send ``messages`` over ``connections`` sessions; the seconds it took.
    Each is MESSAGE, or with ``raws`` the next of those (benchmarks/store.py
    needs distinct messages: the store answers a repeated one from its
    record), made ready for DATA before the clock starts.
    """
    from mailserver.wire import dot_stuff

    fixed = dot_stuff(MESSAGE) + b".\r\n"
    payloads = None if raws is None else [dot_stuff(raw) + b".\r\n" for raw in raws]
    if payloads is not None and len(payloads) < messages:
        raise ValueError(f"{messages} messages to send, {len(payloads)} given")
    numbers = iter(range(messages))
    mail = f"MAIL FROM:<{sender}>\r\n".encode()
    rcpt = f"RCPT TO:<{recipient}>\r\n".encode()

    async def session(count: int) -> None:
        reader, writer = await asyncio.open_unix_connection(path)
        await _reply(reader)
        writer.write(b"LHLO bench.example\r\n")
        await _reply(reader)
        for _ in range(count):
            for command, code in ((mail, b"250"), (rcpt, b"250"), (b"DATA\r\n", b"354")):
                writer.write(command)
                reply = await _reply(reader)
                if not reply.startswith(code):
                    raise RuntimeError(f"{command!r}: {reply!r}")
            writer.write(fixed if payloads is None else payloads[next(numbers)])
            reply = await _reply(reader)
            if not reply.startswith(b"250"):
                raise RuntimeError(f"after DATA: {reply!r}")
        writer.write(b"QUIT\r\n")
        await _reply(reader)
        writer.close()

    shares = [messages // connections + (i < messages % connections) for i in range(connections)]
    started = time.perf_counter()
    await asyncio.gather(*(session(n) for n in shares))
    return time.perf_counter() - started


# Processes ---------------------------------------------------------------------------


def wait_listening(path: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server exited early: {process.args}")
        probe = socket.socket(socket.AF_UNIX)
        try:
            probe.connect(path)
            return
        except OSError:
            time.sleep(0.05)
        finally:
            probe.close()
    sys.exit(f"server did not listen: {process.args}")


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def mailpipe() -> str:
    script = Path(sys.executable).with_name("django-mailpipe")
    if not script.exists():
        sys.exit("django-mailpipe is not installed beside this Python: pip install -e .")
    return str(script)


def timed_run(argv: list[str], env: dict, stdin: bytes | None) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, input=stdin, env=env, capture_output=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{argv[0]} exited {result.returncode}: {result.stdout!r} {result.stderr!r}")
    return elapsed


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="processes per variant (part 1)")
    parser.add_argument("--messages", type=int, default=3000, help="messages per load round")
    parser.add_argument("--connections", type=int, default=4, help="LMTP sessions at once")
    parser.add_argument("--rounds", type=int, default=5, help="load rounds per server")
    parser.add_argument("--workers", type=int, default=4, help="runmailserver --workers")
    parser.add_argument("--quick", action="store_true", help="a few runs and messages")
    parser.add_argument("--null-server", metavar="ADDRESS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.null_server:
        null_server(args.null_server)
        return
    if args.quick:
        args.runs, args.messages, args.rounds = 5, 300, 1

    tmp = Path(tempfile.mkdtemp(prefix="msbench-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.server.settings",
        "PYTHONPATH": str(ROOT),
        "MAILSERVER_TEST_DB": str(tmp / "db.sqlite3"),
    }
    server_sock, null_sock = str(tmp / "lmtp.sock"), str(tmp / "null.sock")
    log = open(tmp / "server.log", "wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "django",
            "runmailserver",
            "--bind",
            f"unix:{server_sock}",
            "--workers",
            str(args.workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    null = subprocess.Popen(
        [sys.executable, __file__, "--null-server", f"unix:{null_sock}"],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_listening(server_sock, server)
        wait_listening(null_sock, null)
        idle_rss = rss_kib(server.pid, "VmRSS")
        report_processes(args, env, server_sock)
        report_load(args, server_sock, null_sock, server.pid, idle_rss)
    finally:
        for process in (server, null):
            process.send_signal(signal.SIGTERM)
        codes = [server.wait(30), null.wait(30)]
        log.close()
    if codes[0] != 0:
        sys.exit(f"runmailserver exited {codes[0]}; log in {tmp / 'server.log'}")
    lines = (tmp / "server.log").read_bytes().count(b" outcome=ignored status=2.0.0 ")
    print(f"\nrunmailserver logged {lines} delivered recipients and stopped cleanly.")


def report_processes(args, env, server_sock) -> None:
    script = mailpipe()
    variants = {
        "(a) python -c pass": ([sys.executable, "-c", "pass"], None),
        "(b) django-mailpipe --via": (
            [script, "--via", f"unix:{server_sock}", "--sender", SENDER, RECIPIENT],
            MESSAGE,
        ),
        "(c) django-mailpipe in-process": (
            [script, "--settings", "tests.server.settings", "--sender", SENDER, RECIPIENT],
            MESSAGE,
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for argv, stdin in variants.values():  # warm the page cache
        timed_run(argv, env, stdin)
    for _ in range(args.runs):
        for name, (argv, stdin) in variants.items():
            times[name].append(timed_run(argv, env, stdin))
    print(f"Part 1: one process per message, {args.runs} runs each (ms)")
    print(f"  {'variant':34} {'median':>8} {'p90':>8}")
    medians = {}
    for name, values in times.items():
        medians[name] = statistics.median(values)
        print(f"  {name:34} {medians[name] * 1000:8.1f} {percentile(values, 0.9) * 1000:8.1f}")
    a, b, c = medians.values()
    print(f"  b/a = {b / a:.2f} (target <= 2.5)   c/a = {c / a:.2f}   c/b = {c / b:.1f}")


def report_load(args, server_sock, null_sock, server_pid, idle_rss) -> None:
    asyncio.run(load(server_sock, min(300, args.messages), args.connections))  # warm up
    asyncio.run(load(null_sock, min(300, args.messages), args.connections))
    rates: dict[str, list[float]] = {"server": [], "null": []}
    for _ in range(args.rounds):
        for name, path in (("server", server_sock), ("null", null_sock)):
            seconds = asyncio.run(load(path, args.messages, args.connections))
            rates[name].append(args.messages / seconds)
    server_rate = statistics.median(rates["server"])
    null_rate = statistics.median(rates["null"])
    print(
        f"\nPart 2: {args.messages} messages x {args.rounds} rounds over "
        f"{args.connections} LMTP connections (median round; all rounds in brackets)"
    )
    print(
        f"  (d) runmailserver, trivial view  {server_rate:8.0f} msg/s  "
        f"{[round(r) for r in rates['server']]}"
    )
    print(
        f"  (e) aiosmtpd, do-nothing handler {null_rate:8.0f} msg/s  "
        f"{[round(r) for r in rates['null']]}"
    )
    print(
        f"  d/e = {server_rate / null_rate:.2f} (target >= 0.33); "
        f"d {'>=' if server_rate >= 1000 else '<'} 1,000 msg/s (target >= 1,000)"
    )
    peak = rss_kib(server_pid, "VmHWM")
    print(
        f"  runmailserver RSS: {idle_rss / 1024:.1f} MiB idle after start, "
        f"{peak / 1024:.1f} MiB peak ({args.workers} workers)"
    )


if __name__ == "__main__":
    main()
