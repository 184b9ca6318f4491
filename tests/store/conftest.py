"""
The store's tests. In process, each runs with mailserver.store installed
(the suite's settings leave it out, so every other test sees the app
without it); real processes run tests/store_settings.py on a database of
their own. Both on SQLite, and on PostgreSQL when MAILSERVER_TEST_DATABASE
is "postgres" (bin/test runs this directory a second time so).
"""

import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.test import override_settings

ROOT = Path(__file__).resolve().parent.parent.parent
POSTGRES = os.environ.get("MAILSERVER_TEST_DATABASE") == "postgres"

TABLES = [
    "mailserver_store_outboundmessage",
    "mailserver_store_inboundattempt",
    "mailserver_store_inboundmessage",
    "mailapp_comment",
    "mailapp_ticket",
]


def with_store():
    from django.conf import settings

    return [*settings.INSTALLED_APPS, "mailserver.store"]


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database gets the store's tables too."""
    from django.core.management import call_command

    with django_db_blocker.unblock(), override_settings(INSTALLED_APPS=with_store()):
        call_command("migrate", "mailserver_store", verbosity=0)


@pytest.fixture(autouse=True)
def store(tmp_path):
    """mailserver.store installed, its files under the test's own directory."""
    root = tmp_path / "store"
    flags = tmp_path / "flags"
    flags.mkdir()
    with override_settings(
        INSTALLED_APPS=with_store(),
        MAIL_STORE_ROOT=str(root),
        ROOT_MAILCONF="tests.store.mailconf",
        STORE_TEST_FLAGS=str(flags),
    ):
        yield root


class ProcessDatabase:
    """The database real processes share, read and cleared by the test directly."""

    def __init__(self, env):
        self.env = env

    def connect(self):
        if POSTGRES:
            import psycopg

            return psycopg.connect(
                host="127.0.0.1",
                user="postgres",
                dbname=self.env["MAILSERVER_TEST_DB"],
                autocommit=True,
            )
        return sqlite3.connect(self.env["MAILSERVER_TEST_DB"], isolation_level=None)

    def rows(self, sql):
        db = self.connect()
        try:
            return [tuple(row) for row in db.execute(sql).fetchall()]
        finally:
            db.close()

    def count(self, table, where="1=1"):
        return self.rows(f"SELECT count(*) FROM {table} WHERE {where}")[0][0]

    def execute(self, *statements):
        db = self.connect()
        try:
            for sql in statements:
                db.execute(sql)
        finally:
            db.close()

    def clear(self):
        self.execute(*(f"DELETE FROM {table}" for table in TABLES))


def _create_postgres_database(name):
    import psycopg

    with psycopg.connect(host="127.0.0.1", user="postgres", autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')


def _drop_postgres_database(name):
    import psycopg

    with psycopg.connect(host="127.0.0.1", user="postgres", autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def process_env(base, settings_module, prefix, *dirs):
    """
    Environment for real processes running ``settings_module`` on a migrated
    database of their own (PostgreSQL or a SQLite file, as the run's), with
    the store and the test directories ``dirs`` under ``base``. A generator:
    the database is dropped when it resumes.
    """
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "PYTHONPATH": str(ROOT),
        "MAIL_STORE_ROOT": str(base / "store"),
        **{f"MAILSERVER_TEST_{name.upper()}": str(base / name) for name in dirs},
    }
    if POSTGRES:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        _create_postgres_database(name)
        env["MAILSERVER_TEST_DB"] = name
    else:
        env["MAILSERVER_TEST_DB"] = str(base / "mail.sqlite3")
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--verbosity", "0"], env=env, check=True
    )
    yield env
    if POSTGRES:
        _drop_postgres_database(env["MAILSERVER_TEST_DB"])


@pytest.fixture(scope="session")
def store_process_env(tmp_path_factory):
    """Environment for real processes: tests/store_settings.py on a migrated database."""
    yield from process_env(
        tmp_path_factory.mktemp("store-processes"),
        "tests.store_settings",
        "mailserver_processes",
        "sent",
        "flags",
        "marker",
    )


@pytest.fixture
def processes(store_process_env):
    """A clean slate for each test: no rows, no stored or sent files, no flags."""
    env = dict(store_process_env)
    database = ProcessDatabase(env)
    database.clear()
    for name in ("MAIL_STORE_ROOT", "MAILSERVER_TEST_SENT", "MAILSERVER_TEST_FLAGS"):
        shutil.rmtree(env[name], ignore_errors=True)
        Path(env[name]).mkdir(parents=True)
    Path(env["MAILSERVER_TEST_MARKER"]).unlink(missing_ok=True)
    return env, database
