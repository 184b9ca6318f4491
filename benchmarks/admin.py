"""
The store's admin on a large table: how long a change list page takes, and
how many queries it makes, with N inbound messages (100,000 by default).

    python benchmarks/admin.py                  # SQLite in a temporary directory
    python benchmarks/admin.py --rows 1000000   # more rows
    MAILSERVER_TEST_DATABASE=postgres python benchmarks/admin.py   # PostgreSQL at 127.0.0.1

A script, not a test (tests/admin/test_changelist.py asserts the query
counts): run from the checkout, it uses tests/admin_settings.py on a
database of its own, made and dropped here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [
    ("the list", ""),
    ("status filter", "?status__exact=deferred"),
    ("outcome + route", "?outcome=delivered&route=open-ticket"),
    ("date filter", "?received_at__gte=2000-01-01+00%3A00%3A00%2B00%3A00"),
    ("search (Message-ID)", "?q=%3Cm77777%40example.org%3E"),
    ("page 150", "?p=150"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
    options = parser.parse_args()

    postgres = os.environ.get("MAILSERVER_TEST_DATABASE") == "postgres"
    directory = tempfile.mkdtemp(prefix="mailserver-admin-bench-")
    name = f"mailserver_bench_{uuid.uuid4().hex[:8]}" if postgres else f"{directory}/bench.sqlite3"
    os.environ.update(
        DJANGO_SETTINGS_MODULE="tests.admin_settings",
        MAILSERVER_TEST_DB=name,
        MAIL_STORE_ROOT=f"{directory}/store",
    )
    sys.path.insert(0, str(ROOT))
    if postgres:
        import psycopg

        with psycopg.connect(host="127.0.0.1", user="postgres", autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
    try:
        run(options)
    finally:
        if postgres:
            from django.db import connections

            connections.close_all()
            with psycopg.connect(host="127.0.0.1", user="postgres", autocommit=True) as db:
                db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(options) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    from tests.admin.test_changelist import build

    setup_test_environment()
    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    build(options.rows)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(
        f"{options.rows:,} inbound messages on {connection.vendor}, "
        f"written in {time.perf_counter() - started:.1f} s"
    )
    User.objects.create_superuser("bench", "bench@example.com", "bench")
    client = Client()
    client.login(username="bench", password="bench")
    url = "/admin/mailserver_store/inboundmessage/"
    print(f"{'page':<22}{'median':>10}{'p90':>10}{'queries':>9}  slowest query")
    for label, query in PAGES:
        client.get(url + query)  # warm
        times = []
        for _ in range(options.runs):
            with CaptureQueriesContext(connection) as queries:
                begun = time.perf_counter()
                response = client.get(url + query)
                times.append(time.perf_counter() - begun)
            assert response.status_code == 200, (label, response.status_code)
        slowest = max(queries.captured_queries, key=lambda q: float(q["time"]))
        times.sort()
        print(
            f"{label:<22}{statistics.median(times) * 1000:>8.1f}ms"
            f"{times[int(len(times) * 0.9) - 1] * 1000:>8.1f}ms{len(queries):>9}  "
            f"{float(slowest['time']) * 1000:.1f} ms: {slowest['sql'][:60]}..."
        )


if __name__ == "__main__":
    main()
