#!/usr/bin/env python
"""
The fault-injection run of issue 8, at full size, through a real Postfix.

    python benchmarks/faults.py                          # 1000 messages, pipe, PostgreSQL
    python benchmarks/faults.py --path lmtp              # Postfix -> LMTP -> runmailserver
    python benchmarks/faults.py --database sqlite --messages 300
    python benchmarks/faults.py --no-store               # what the store fixes
    python benchmarks/faults.py --seed 9 --keep          # other messages struck; keep the files

Needs root, Postfix and the pipe user (.ci/install-mtas.sh), and for
PostgreSQL a server at 127.0.0.1:5432 that lets user postgres in without a
password (the run creates a database of its own and drops it afterwards).
What the run does and what it checks: tests/mta/faults.py. It prints the
figures and exits 1 if a check fails; the end-to-end tests
(tests/mta/test_faults.py) run it smaller.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.mta.faults import FaultRun, missing_postgres, store_available  # noqa: E402
from tests.mta.harness import HarnessError, missing_prerequisites, new_root  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000, help="messages (1000)")
    parser.add_argument(
        "--concurrency", type=int, default=20, help="SMTP connections and deliveries at once (20)"
    )
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--path", choices=["pipe", "lmtp"], default="pipe")
    parser.add_argument(
        "--no-store", action="store_true", help="without mailserver.store: duplicates show"
    )
    parser.add_argument("--seed", type=int, default=8, help="which messages the faults strike")
    parser.add_argument("--timeout", type=float, help="for Postfix to finish (from the size)")
    parser.add_argument("--keep", action="store_true", help="keep the run's directory and database")
    args = parser.parse_args()

    reason = missing_prerequisites("postfix") or (
        args.path == "lmtp" and missing_prerequisites("server")
    )
    if not reason and args.database == "postgres":
        reason = missing_postgres()
    if not reason and not args.no_store and not store_available():
        reason = "mailserver.store is not in this checkout (try --no-store)"
    if reason:
        print(f"benchmarks/faults.py: {reason}", file=sys.stderr)
        return 2

    root = new_root("faults")
    run = FaultRun(
        root,
        messages=args.messages,
        concurrency=args.concurrency,
        database=args.database,
        path=args.path,
        store=not args.no_store,
        seed=args.seed,
        timeout=args.timeout,
        progress=lambda line: print(line, flush=True),
        keep_database=args.keep,
    )
    started = time.monotonic()
    try:
        figures = run.run()
        print(figures.format())
        print(
            f"  machine     {os.cpu_count()} CPUs; {time.monotonic() - started:.0f}s in all, "
            "set-up included"
        )
    except HarnessError as exc:
        print(f"benchmarks/faults.py: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if figures.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
