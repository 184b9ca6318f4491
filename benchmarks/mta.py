#!/usr/bin/env python
"""
Messages per second through a real Postfix: the pipe transport against the
lmtp transport (issue 5, "Benchmark", third part), side by side in one run.

    python benchmarks/mta.py                   # 200 messages each way
    python benchmarks/mta.py --messages 500    # steadier figures
    python benchmarks/mta.py --quick           # 30 messages: a smoke test
    python benchmarks/mta.py --no-via          # skip the relay-mode column
    python benchmarks/mta.py --keep            # keep the instances' directory

Needs what the end-to-end tests need (root, Postfix, the pipe user: run
.ci/install-mtas.sh) and builds its instances with their harness
(tests/mta/harness.py), from the files in contrib/postfix/:

  pipe  contrib/postfix/{main.cf,master.cf,transport}: pipe(8) runs
        django-mailpipe, which sets Django up for every message
  lmtp  contrib/postfix/lmtp/: the lmtp(8) client hands messages to one
        runmailserver (python -m django runmailserver --bind unix:...)
  via   contrib/postfix/{main.cf,transport} and via/master.cf: pipe(8) runs
        django-mailpipe --via, which hands each message to that same server

Each way gets the same N messages, one recipient each (ok@mail.test, whose
view writes one JSON line and returns EmailIgnoreResponse), injected over
SMTP as fast as Postfix takes them, from several connections at once. The
clock starts before the first message is injected and stops when the last
``status=sent`` for them is in the maillog (which is polled; any other final
state aborts the run). A few messages go through each way first, unmeasured,
so that caches are warm and Postfix's concurrency has ramped up.

When a way keeps up with the injection (the lmtp one does here), its figure
is bounded by how fast Postfix itself takes mail in over SMTP; the table's
"lag" column (end of injection to the last status=sent) shows it.

Concurrency is what contrib/ configures: the pipe's destination is the
recipient (django_destination_recipient_limit = 1), so Postfix runs up to
default_destination_concurrency_limit (20) django-mailpipe processes for
ok@ at once; the lmtp transport opens up to
mailserver_destination_concurrency_limit (8) sessions to the server.

Nothing in the repository is written to.
"""

from __future__ import annotations

import argparse
import email.policy
import os
import re
import shutil
import smtplib
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.mta.harness import (  # noqa: E402
    SENDER_DOMAIN,
    TEST_DOMAIN,
    HarnessError,
    MaillogTail,
    PipeRuntime,
    Postfix,
    ServerProcess,
    make_message,
    missing_prerequisites,
    new_root,
    pipe_user,
)

SENDER = f"bench@{SENDER_DOMAIN}"
RECIPIENT = f"ok@{TEST_DOMAIN}"

DESCRIPTIONS = {
    "pipe": "pipe(8) -> django-mailpipe (Django set up per message)",
    "lmtp": "lmtp(8) -> runmailserver",
    "via": "pipe(8) -> django-mailpipe --via -> runmailserver",
}


def messages(count: int, tag: str, recipient: str = RECIPIENT) -> list[bytes]:
    return [
        make_message(sender=SENDER, to=recipient, subject=f"bench {tag} {i}").as_bytes(
            policy=email.policy.SMTP
        )
        for i in range(count)
    ]


def inject(
    port: int,
    batch: list[bytes],
    queue_ids: list[str],
    errors: list[str],
    recipient: str = RECIPIENT,
) -> None:
    """One SMTP connection, one transaction per message, as fast as Postfix answers."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
            smtp.ehlo(SENDER_DOMAIN)
            for data in batch:
                code, resp = smtp.mail(SENDER)
                if code == 250:
                    code, resp = smtp.rcpt(recipient)
                if code == 250:
                    code, resp = smtp.data(data)
                m = re.search(rb"queued as ([0-9A-Za-z]+)", resp)
                if code != 250 or not m:
                    errors.append(f"{code} {resp!r}")
                    smtp.rset()
                    continue
                queue_ids.append(m.group(1).decode())
    except (OSError, smtplib.SMTPException) as exc:
        errors.append(f"{type(exc).__name__}: {exc}")


def run(
    postfix: Postfix,
    count: int,
    connections: int,
    tag: str,
    timeout: float,
    recipient: str = RECIPIENT,
) -> dict:
    """Inject `count` messages (to `recipient`) and wait for all of them to be sent."""
    data = messages(count, tag, recipient)
    tail = MaillogTail(postfix.maillog)
    queue_ids: list[str] = []
    errors: list[str] = []
    batches = [data[i::connections] for i in range(connections)]
    threads = [
        threading.Thread(target=inject, args=(postfix.port, b, queue_ids, errors, recipient))
        for b in batches
        if b
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    sent: set[str] = set()
    injected_at = None
    while True:
        for qid, status in tail.read():
            if status == "sent":
                sent.add(qid)
            elif status in ("deferred", "bounced"):
                raise HarnessError(
                    f"{tag}: {qid} was {status}, not sent:\n"
                    + "\n".join(postfix.log().splitlines()[-20:])
                )
        if injected_at is None and not any(t.is_alive() for t in threads):
            injected_at = time.monotonic()
            if errors:
                raise HarnessError(f"{tag}: injection failed: {errors[:3]}")
        if injected_at is not None and len(queue_ids) == count and set(queue_ids) <= sent:
            finished = time.monotonic()
            break
        if time.monotonic() - started > timeout:
            raise HarnessError(
                f"{tag}: only {len(sent & set(queue_ids))} of {count} sent after {timeout:.0f}s"
            )
        time.sleep(0.01)
    elapsed = finished - started
    return {
        "count": count,
        "seconds": elapsed,
        "injection": injected_at - started,
        "rate": count / elapsed,
    }


def peak_rss_mb(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(r"^VmHWM:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) / 1024 if m else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200, help="messages per way (200)")
    parser.add_argument(
        "--connections", type=int, default=4, help="SMTP connections injecting at once (4)"
    )
    parser.add_argument("--quick", action="store_true", help="30 messages per way")
    parser.add_argument("--no-via", action="store_true", help="skip the relay-mode column")
    parser.add_argument("--keep", action="store_true", help="keep the instances' directory")
    parser.add_argument(
        "--timeout", type=float, default=300, help="give up on a way after this many seconds"
    )
    args = parser.parse_args()
    count = 30 if args.quick else args.messages
    for need in ("postfix", "server"):
        reason = missing_prerequisites(need)
        if reason:
            print(f"benchmarks/mta.py: {reason}", file=sys.stderr)
            return 2

    ways = ["pipe", "lmtp"] + ([] if args.no_via else ["via"])
    root = new_root("bench")
    instances: dict[str, Postfix] = {}
    server = None
    try:
        t0 = time.monotonic()
        (root / "pipe").mkdir()
        runtime = PipeRuntime(root / "pipe", pipe_user()).build()
        server = ServerProcess(root / "server", runtime).start()
        for way in ways:
            instance = Postfix(
                root / f"postfix-{way}",
                runtime,
                mode=way,
                server=None if way == "pipe" else server,
            )
            instances[way] = instance
            instance.start()
        print(
            f"Set up in {time.monotonic() - t0:.1f}s: Postfix "
            f"{os.popen('/usr/sbin/postconf -dh mail_version').read().strip()}, "
            f"{os.cpu_count()} CPUs, pipe user {runtime.user}, {runtime.python}"
        )
        print("Warming up (unmeasured)...", flush=True)
        for way in ways:
            run(instances[way], min(10, count), 2, f"warm-{way}", args.timeout)

        print(f"Measuring {count} messages per way, {args.connections} SMTP connections...")
        results = {}
        for way in ways:
            results[way] = run(instances[way], count, args.connections, way, args.timeout)
            r = results[way]
            print(
                f"  {way:<5} {r['rate']:8.1f} msg/s  ({r['seconds']:.2f}s; "
                f"injected in {r['injection']:.2f}s)  {DESCRIPTIONS[way]}",
                flush=True,
            )
    except HarnessError as exc:
        print(f"benchmarks/mta.py: {exc}", file=sys.stderr)
        return 1
    finally:
        rss = peak_rss_mb(server.process.pid) if server and server.running else None
        for instance in instances.values():
            instance.stop()
        if server is not None:
            server.stop()
        if args.keep:
            print(f"Kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    print()
    print(f"{'way':<6}{'messages':>9}{'seconds':>9}{'msg/s':>9}{'ms/msg':>9}{'lag':>8}")
    for way, r in results.items():
        print(
            f"{way:<6}{r['count']:>9}{r['seconds']:>9.2f}{r['rate']:>9.1f}"
            f"{1000 / r['rate']:>9.1f}{r['seconds'] - r['injection']:>8.2f}"
        )
    print(
        "(lag: seconds from the end of injection to the last status=sent. A lag "
        "near zero means\n the way kept up with Postfix's own intake, which then "
        "bounds its figure.)"
    )
    pipe, lmtp = results["pipe"]["rate"], results["lmtp"]["rate"]
    print()
    print(f"lmtp / pipe: {lmtp / pipe:.1f}x the messages per second")
    if "via" in results:
        print(f"via  / pipe: {results['via']['rate'] / pipe:.1f}x")
    if rss:
        print(f"runmailserver peak RSS: {rss:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
