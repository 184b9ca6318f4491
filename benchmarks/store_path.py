#!/usr/bin/env python
"""
What one message costs the store, in process: the SQL statements it runs,
the Python function calls it makes (which, unlike time, do not change with
the machine's load) and the CPU time, with mailserver.store and without.

    python benchmarks/store_path.py                     # SQLite, with the store
    python benchmarks/store_path.py --without           # without it
    python benchmarks/store_path.py --database postgres # 127.0.0.1:5432, user postgres
    python benchmarks/store_path.py --profile           # and where the CPU goes
    python benchmarks/store_path.py --floor             # and the store's SQL alone

The help desk of benchmarks/store.py (the example's open_ticket: one ticket,
one reply through the file e-mail backend), each message a new one, handed
to the dispatch core as runmailserver hands it (a spooled file, one
recipient). ``--floor`` measures beside it the least SQL a store with
these guarantees runs per message, through Django's cursor with nothing
of ours around it (the row inserted, the ticket, the reply's row, the
row finished, the commit, the reply marked sent in a commit of its own),
against the ticket's transaction alone: what no Python of ours could
save. To count fsyncs, run it under ``strace -f -c -e
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
    parser.add_argument("--floor", action="store_true", help="and the store's SQL alone")
    args = parser.parse_args(argv)
    if args.floor and args.without:
        parser.error("--floor measures the store's statements: it needs the store")

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
        if args.floor:
            floor(connection, args.messages)
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


def floor(connection, messages: int) -> None:
    """The store's statements alone, raw, against the ticket's alone; CPU per message."""
    from django.db import transaction
    from django.utils import timezone
    from tickets.models import Ticket

    from mailserver.store.handler import _FINISHED_FIELDS
    from mailserver.store.models import InboundMessage, OutboundMessage

    quote = connection.ops.quote_name

    def statement(verb: str, obj, names: list[str] | None = None) -> tuple[str, dict]:
        """
        An INSERT of ``obj`` (RETURNING its key) or an UPDATE of its fields
        ``names`` by key, as the ORM would bind them, with pyformat names:
        the parameters are a dict, to change one by its field's name.
        """
        opts = obj._meta
        fields = [
            f
            for f in opts.concrete_fields
            if not f.primary_key and (names is None or f.name in names)
        ]
        params = {
            f.name: f.get_db_prep_save(f.pre_save(obj, verb == "insert"), connection)
            for f in fields
        }
        table, pk = quote(opts.db_table), quote(opts.pk.column)
        if verb == "insert":
            sql = (
                f"INSERT INTO {table} ({', '.join(quote(f.column) for f in fields)}) "
                f"VALUES ({', '.join(f'%({f.name})s' for f in fields)}) RETURNING {pk}"
            )
        else:
            assignments = ", ".join(f"{quote(f.column)} = %({f.name})s" for f in fields)
            sql = f"UPDATE {table} SET {assignments} WHERE {pk} = %(pk)s"
        return sql, params

    raw = bench.message("floor")
    now = timezone.now()
    inbound = InboundMessage(
        sender=bench.SENDER,
        recipient=bench.RECIPIENT,
        transport="lmtp",
        size=len(raw),
        raw_name="x" * 64,
        raw=raw,
    )
    inbound_sql, inbound_params = statement("insert", inbound)
    ticket_sql, ticket_params = statement("insert", Ticket(subject="floor", requester=bench.SENDER))
    reply = OutboundMessage(raw=raw * 3, sender=bench.RECIPIENT, recipients=[bench.SENDER])
    reply_sql, reply_params = statement("insert", reply)
    # The row finished as the store finishes it (handler._finish), and the
    # reply marked sent as the outbox marks it (outbox._sent).
    inbound.status, inbound.outcome, inbound.route = "processed", "delivered", "tickets:open"
    inbound.enhanced_code, inbound.status_text, inbound.attempts = "2.0.0", "ok", 1
    inbound.finished_at = now
    finish_sql, finish_params = statement("update", inbound, _FINISHED_FIELDS)
    reply.status, reply.sent_at, reply.attempts = "sent", now, 1
    sent_sql, sent_params = statement(
        "update", reply, ["status", "sent_at", "attempts", "lease_owner", "lease_expires_at"]
    )
    cursor = connection.cursor()

    def stored() -> None:
        with transaction.atomic():
            inbound_params["idempotency_key"] = uuid.uuid4().hex
            cursor.execute(inbound_sql, inbound_params)
            (pk,) = cursor.fetchone()
            finish_params["pk"] = reply_params["inbound"] = pk
            cursor.execute(ticket_sql, ticket_params)
            cursor.fetchone()
            cursor.execute(reply_sql, reply_params)
            (sent_params["pk"],) = cursor.fetchone()
            cursor.execute(finish_sql, finish_params)
        cursor.execute(sent_sql, sent_params)

    def plain() -> None:
        with transaction.atomic():
            cursor.execute(ticket_sql, ticket_params)
            cursor.fetchone()

    rows = InboundMessage.objects.count(), OutboundMessage.objects.count(), Ticket.objects.count()
    cpu: dict[str, list[float]] = {"stored": [], "plain": []}
    for _ in range(3):  # alternating, so that drift hits both alike
        for name, one in (("stored", stored), ("plain", plain)):
            start = time.process_time()
            for _ in range(messages):
                one()
            cpu[name].append((time.process_time() - start) / messages * 1000)
    made = (
        InboundMessage.objects.count() - rows[0],
        OutboundMessage.objects.count() - rows[1],
        Ticket.objects.count() - rows[2],
    )
    if made != (3 * messages, 3 * messages, 6 * messages):
        raise SystemExit(f"the floor's statements made {made} rows, not what they should")
    stored_ms, plain_ms = min(cpu["stored"]), min(cpu["plain"])
    print(
        f"Floor, the SQL alone (best of 3): with the store {stored_ms:.2f} ms CPU per message, "
        f"the ticket alone {plain_ms:.2f} ms: the store's statements cost at least "
        f"{stored_ms - plain_ms:.2f} ms here"
    )


if __name__ == "__main__":
    sys.exit(main())
