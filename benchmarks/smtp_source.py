#!/usr/bin/env python
"""
runmailserver against a real client: Postfix's smtp-source (issue 13, item 9).

    python benchmarks/smtp_source.py                 # 2,000 messages x 5 rounds per server
    python benchmarks/smtp_source.py --rounds 9      # steadier medians
    python benchmarks/smtp_source.py --code /tmp/old # another checkout's runmailserver

smtp-source (Debian's postfix package: /usr/sbin/smtp-source; install postfix
with .ci/install-mtas.sh if it is missing) speaks LMTP (-L) over a unix
socket, 20 sessions at once (-s 20), each reusing its connection (-d), and
sends 2,000 messages (-m 2000) of 2 KB of body (-l 2048) to one recipient
each, in alternating rounds against

  (d) runmailserver with a trivial view (tests.server.settings, route ok@),
      4 worker threads, its line per recipient logged to a file
  (e) a do-nothing aiosmtpd LMTP server (benchmarks/server.py --null-server),
      the ceiling for a Python LMTP server on this machine

Each round is the wall time of one smtp-source run, which must exit 0 (it
stops at the first reply it did not expect). The median round counts, and
the ratio d/e (target >= 0.68, what issue 13 measured before its fixes).
Beside it, the CPU time each server process used per message (user and
system, all threads, from /proc): on a machine shared with other work the
wall-clock rounds swing by a factor of two, the CPU cost much less.
smtp-source does not pipeline: each command waits for its reply, as
Postfix's own lmtp client does not for LMTP either (it pipelines SMTP).

Figures depend on the machine and what else runs on it: read the ratio, and
the load average printed beside it. Nothing in the repository is written to.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.server import wait_listening  # noqa: E402

SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def smtp_source(path: str, args) -> float:
    """One run: the seconds it took. Exits if smtp-source reports a failure."""
    argv = [
        SMTP_SOURCE,
        "-L",
        "-d",
        "-s",
        str(args.sessions),
        "-m",
        str(args.messages),
        "-l",
        str(args.length),
        "-f",
        "bench@example.org",
        "-t",
        "ok@example.com",
        "-M",
        "bench.example",
        f"unix:{path}",
    ]
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, timeout=600)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv)}: exit {result.returncode}\n{result.stderr.decode()}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--length", type=int, default=2048, help="body bytes per message")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per server")
    parser.add_argument("--workers", type=int, default=4, help="runmailserver --workers")
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose code to run")
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="DIR",
        help="also run another checkout's runmailserver, in the same rounds",
    )
    args = parser.parse_args()
    if not os.path.exists(SMTP_SOURCE):
        sys.exit("smtp-source not found: install postfix (bash .ci/install-mtas.sh)")

    tmp = Path(tempfile.mkdtemp(prefix="mssource-"))
    # (name, label, code, socket); the do-nothing server last.
    servers = [("d", "runmailserver, trivial view", args.code)]
    if args.compare:
        servers.append(("c", f"runmailserver of {args.compare}", args.compare))
    processes: dict[str, subprocess.Popen] = {}
    sockets: dict[str, str] = {}
    logs: dict[str, Path] = {}
    for name, _, code in servers:
        sockets[name] = str(tmp / f"{name}.sock")
        logs[name] = tmp / f"{name}.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.server.settings",
            "PYTHONPATH": str(code),
            "MAILSERVER_TEST_DB": str(tmp / f"{name}.sqlite3"),
        }
        with open(logs[name], "wb") as log:
            processes[name] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "django",
                    "runmailserver",
                    "--bind",
                    f"unix:{sockets[name]}",
                    "--workers",
                    str(args.workers),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
    sockets["e"] = str(tmp / "null.sock")
    processes["e"] = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "server.py"),
            "--null-server",
            f"unix:{sockets['e']}",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )
    labels = {name: label for name, label, _ in servers}
    labels["e"] = "aiosmtpd, do-nothing handler"
    rates: dict[str, list[float]] = {name: [] for name in processes}
    cpu: dict[str, list[float]] = {name: [] for name in processes}  # µs per message
    try:
        for name, process in processes.items():
            wait_listening(sockets[name], process)
        small = argparse.Namespace(**{**vars(args), "messages": 200})
        for name in processes:  # warm up
            smtp_source(sockets[name], small)
        load = os.getloadavg()
        for _ in range(args.rounds):
            for name, process in processes.items():
                before = cpu_seconds(process.pid)
                rates[name].append(args.messages / smtp_source(sockets[name], args))
                cpu[name].append((cpu_seconds(process.pid) - before) / args.messages * 1e6)
        load_after = os.getloadavg()
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        codes = {name: process.wait(60) for name, process in processes.items()}
    print(f"cores: {os.cpu_count()}; load average before {load[0]:.2f}, after {load_after[0]:.2f}")
    print(
        f"smtp-source -L -d -s {args.sessions} -m {args.messages} -l {args.length}, "
        f"{args.rounds} rounds each (median; all rounds in brackets); CPU time per "
        "message (user + system, all threads), which other load disturbs less"
    )
    for name in processes:
        print(
            f"  ({name}) {labels[name]:34} {statistics.median(rates[name]):6.0f} msg/s "
            f"{[round(r) for r in rates[name]]}  CPU {statistics.median(cpu[name]):5.0f} µs"
        )
    e, ce = statistics.median(rates["e"]), statistics.median(cpu["e"])
    for name, _, _ in servers:
        d, cd = statistics.median(rates[name]), statistics.median(cpu[name])
        print(
            f"  {name}/e = {d / e:.2f} msg/s (target >= 0.68); "
            f"by CPU per message, e/{name} = {ce / cd:.2f}"
        )
    expected = 200 + args.rounds * args.messages
    for name, _, _ in servers:
        delivered = logs[name].read_bytes().count(b" outcome=ignored status=2.0.0 ")
        print(
            f"  ({name}) exited {codes[name]}, logged {delivered} of {expected} recipients "
            "delivered"
        )
        if codes[name] != 0 or delivered != expected:
            sys.exit(f"not every message was delivered: see {logs[name]}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
