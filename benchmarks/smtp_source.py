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


def smtp_source(path: str, args) -> float:
    """One run: the seconds it took. Exits if smtp-source reports a failure."""
    argv = [
        SMTP_SOURCE, "-L", "-d",
        "-s", str(args.sessions), "-m", str(args.messages), "-l", str(args.length),
        "-f", "bench@example.org", "-t", "ok@example.com", "-M", "bench.example",
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
    args = parser.parse_args()
    if not os.path.exists(SMTP_SOURCE):
        sys.exit("smtp-source not found: install postfix (bash .ci/install-mtas.sh)")

    tmp = Path(tempfile.mkdtemp(prefix="mssource-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.server.settings",
        "PYTHONPATH": str(args.code),
        "MAILSERVER_TEST_DB": str(tmp / "db.sqlite3"),
    }
    server_sock, null_sock = str(tmp / "lmtp.sock"), str(tmp / "null.sock")
    log = open(tmp / "server.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "django", "runmailserver", "--bind", f"unix:{server_sock}",
         "--workers", str(args.workers)],
        env=env, stdout=subprocess.DEVNULL, stderr=log,
    )
    null = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "server.py"), "--null-server",
         f"unix:{null_sock}"],
        env=env, stdout=subprocess.DEVNULL,
    )
    rates: dict[str, list[float]] = {"server": [], "null": []}
    try:
        wait_listening(server_sock, server)
        wait_listening(null_sock, null)
        small = argparse.Namespace(**{**vars(args), "messages": 200})
        smtp_source(server_sock, small)  # warm up both
        smtp_source(null_sock, small)
        load = os.getloadavg()
        for _ in range(args.rounds):
            for name, path in (("server", server_sock), ("null", null_sock)):
                rates[name].append(args.messages / smtp_source(path, args))
        load_after = os.getloadavg()
    finally:
        for process in (server, null):
            process.send_signal(signal.SIGTERM)
        codes = [server.wait(60), null.wait(60)]
        log.close()
    if codes[0] != 0:
        sys.exit(f"runmailserver exited {codes[0]}; log in {tmp / 'server.log'}")
    delivered = (tmp / "server.log").read_bytes().count(b" outcome=ignored status=2.0.0 ")
    expected = 200 + args.rounds * args.messages
    d, e = statistics.median(rates["server"]), statistics.median(rates["null"])
    print(f"code: {args.code}; cores: {os.cpu_count()}; "
          f"load average before {load[0]:.2f}, after {load_after[0]:.2f}")
    print(f"smtp-source -L -d -s {args.sessions} -m {args.messages} -l {args.length}, "
          f"{args.rounds} rounds each (median; all rounds in brackets)")
    print(f"  (d) runmailserver, trivial view  {d:7.0f} msg/s  "
          f"{[round(r) for r in rates['server']]}")
    print(f"  (e) aiosmtpd, do-nothing handler {e:7.0f} msg/s  "
          f"{[round(r) for r in rates['null']]}")
    print(f"  d/e = {d / e:.2f} (target >= 0.68)")
    print(f"  runmailserver logged {delivered} of {expected} recipients delivered")
    if delivered != expected:
        sys.exit("some messages were not delivered")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
