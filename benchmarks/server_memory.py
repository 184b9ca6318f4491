#!/usr/bin/env python
"""
runmailserver's peak memory for one LMTP transaction (issue 13, item 1).

    python benchmarks/server_memory.py                  # the four cases below
    python benchmarks/server_memory.py --case 1x100     # one case
    python benchmarks/server_memory.py --code /tmp/old  # another checkout's code

Each case starts a fresh runmailserver (tests.server.settings: a view that
ignores the message, one worker thread), warms it with one small message,
reads its VmHWM (peak resident set), sends one message of the given size to
the given number of recipients in one transaction, and reads VmHWM again:

    1x1, 1x100, 1x1000   a 1 MiB message to 1, 100 and 1,000 recipients
    24x50                a 24 MiB message to 50 recipients (Postfix's
                         default_destination_recipient_limit)

The figure that matters is the growth over the warm base, beside the
message size: runmailserver should stay under base + 3 x size whatever the
number of recipients, as django-mailpipe does.

Standard library and the project only; nothing in the repository is written to.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
CASES = {"1x1": (1, 1), "1x100": (1, 100), "1x1000": (1, 1000), "24x50": (24, 50)}


def message(mib: int) -> bytes:
    """A plain text message of about ``mib`` MiB, as DATA carries it (CRLF, no dot lines)."""
    head = b"From: Bench <bench@example.org>\r\nSubject: big\r\n\r\n"
    line = b"A line of a large message body, long enough to look like real text.\r\n"
    return head + line * (mib * MIB // len(line)) + b".\r\n"


def vm(pid: int, field: str) -> int:
    """A /proc/PID/status field, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class Session:
    def __init__(self, path: str):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(600)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")
        self.reply()
        self.command(b"LHLO bench.example")

    def reply(self) -> bytes:
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("the server closed the connection")
            if line[3:4] != b"-":
                return line

    def command(self, line: bytes) -> bytes:
        self.sock.sendall(line + b"\r\n")
        return self.reply()

    def transaction(self, recipients: int, data: bytes) -> list[bytes]:
        assert self.command(b"MAIL FROM:<bench@example.org>").startswith(b"250")
        # Pipelined (RFC 2920), as an MTA sends them.
        rcpts = (b"RCPT TO:<ok+%d@example.com>\r\n" % i for i in range(recipients))
        self.sock.sendall(b"".join(rcpts))
        for _ in range(recipients):
            assert self.reply().startswith(b"250")
        assert self.command(b"DATA").startswith(b"354")
        self.sock.sendall(data)
        return [self.reply() for _ in range(recipients)]


def run_case(code: Path, mib: int, recipients: int) -> dict:
    directory = tempfile.mkdtemp(prefix="msmem-")
    path = f"{directory}/lmtp.sock"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.server.settings",
        "PYTHONPATH": str(code),
        "MAILSERVER_TEST_DB": f"{directory}/db.sqlite3",
        "MAILSERVER_TEST_MAX_SIZE": str(64 * MIB),
    }
    with open(f"{directory}/server.log", "wb") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "django",
                "runmailserver",
                "--workers",
                "1",
                "--bind",
                f"unix:{path}",
            ],
            env=env,
            cwd=directory,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(path):
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"runmailserver did not start: {directory}/server.log")
            time.sleep(0.05)
        session = Session(path)
        session.transaction(1, b"Subject: warm\r\n\r\nwarm up\r\n.\r\n")
        base = vm(server.pid, "VmHWM")
        data = message(mib)
        started = time.perf_counter()
        replies = session.transaction(recipients, data)
        seconds = time.perf_counter() - started
        peak = vm(server.pid, "VmHWM")
        accepted = sum(r.startswith(b"250") for r in replies)
        session.command(b"QUIT")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    return {
        "base": base / 1024,
        "peak": peak / 1024,
        "size": len(data) / MIB,
        "accepted": accepted,
        "recipients": recipients,
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=sorted(CASES), action="append")
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose code to run")
    args = parser.parse_args()
    print(f"code: {args.code}")
    print(
        f"{'case':>7} {'base MiB':>9} {'peak MiB':>9} {'growth':>8} {'growth/size':>12} "
        f"{'accepted':>9} {'time s':>7}"
    )
    for name in args.case or list(CASES):
        r = run_case(args.code, *CASES[name])
        growth = r["peak"] - r["base"]
        print(
            f"{name:>7} {r['base']:9.1f} {r['peak']:9.1f} {growth:8.1f} "
            f"{growth / r['size']:12.2f} {r['accepted']:>4}/{r['recipients']:<4} "
            f"{r['seconds']:7.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
