#!/usr/bin/env python
"""
What one message costs the store, in process: the SQL statements it runs,
the Python function calls it makes (which, unlike time, do not change with
the machine's load) and the CPU time, with mailserver.store and without.

    python benchmarks/store_path.py                     # SQLite, with the store
    python benchmarks/store_path.py --without           # without it
    python benchmarks/store_path.py --database postgres # 127.0.0.1:5432, user postgres
    python benchmarks/store_path.py --profile           # and where the CPU goes

The help desk of benchmarks/store.py (the example's open_ticket: one ticket,
one reply through the file e-mail backend), each message a new one, handed
to the dispatch core as runmailserver hands it (a spooled file, one
recipient). To count fsyncs, run it under ``strace -f -c -e
trace=fsync,fdatasync`` with two values of --messages and take the
difference.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import store as bench  # noqa: E402  (benchmarks/store.py)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--without", action="store_true", help="without mailserver.store")
    parser.add_argument("--messages", type=int, default=300, help="timed messages (300)")
    parser.add_argument("--profile", action="store_true", help="print a CPU profile")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="store-path-"))
    (tmp / "sent").mkdir()
    variant = bench.Variant(args.database, not args.without)
    databases = bench.Databases()
    config = databases.settings(variant, "path", tmp)
    (tmp / "storepath_settings.py").write_text(bench.settings_text(variant, config, tmp, None))
    sys.path.insert(0, str(tmp))
    os.environ["DJANGO_SETTINGS_MODULE"] = "storepath_settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from mailserver.envelope import Envelope
    from mailserver.transport import deliver

    def one() -> None:
        spool = tempfile.SpooledTemporaryFile(1 << 20)
        spool.write(bench.message(f"path-{uuid.uuid4().hex}"))
        spool.seek(0)
        envelope = Envelope(sender=bench.SENDER, recipient=bench.RECIPIENT, transport="lmtp")
        (result,) = deliver(spool, envelope, [bench.RECIPIENT])
        if not result.outcome.is_success:
            raise SystemExit(f"not delivered: {result.reply()}")

    try:
        call_command("migrate", verbosity=0)
        for _ in range(30):  # warm up: imports, caches, the first rows
            one()
        with CaptureQueriesContext(connection) as queries:
            one()
        print(f"{variant.label}: {len(queries)} statements per message")
        for query in queries:
            print(f"    {query['sql'][:100]}")
        profile = cProfile.Profile()
        profile.runcall(lambda: [one() for _ in range(50)])
        calls = sum(entry[1] for entry in pstats.Stats(profile).stats.values())  # type: ignore[attr-defined]
        print(f"Python function calls per message: {calls / 50:.0f}")
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(args.messages):
            one()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(
            f"CPU per message: {cpu / args.messages * 1000:.2f} ms, "
            f"wall {wall / args.messages * 1000:.2f} ms ({bench.load_average()})"
        )
        if args.profile:
            profile = cProfile.Profile(time.process_time)
            profile.runcall(lambda: [one() for _ in range(args.messages)])
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(40)
            print(out.getvalue())
    finally:
        connection.close()
        databases.drop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
