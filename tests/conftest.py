import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """
    In CI (MAILSERVER_FORBID_SKIPS set), a skipped test is a failed one: the
    tests against the real Postfix and Exim skip on a machine without root or
    without the MTAs, and CI must not pass by not running them.
    """
    outcome = yield
    report = outcome.get_result()
    if (
        report.skipped
        and os.environ.get("MAILSERVER_FORBID_SKIPS")
        and not hasattr(report, "wasxfail")
    ):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, which CI forbids: {reason}"


ADMIN_SETTINGS = "tests.admin_settings"


def pytest_ignore_collect(collection_path, config):
    """
    tests/admin runs with settings of its own (the admin installed, a test
    database in a file), as ``pytest --ds=tests.admin_settings tests/admin``;
    bin/test runs it so. Under any other settings it is left out, and the
    summary says so.
    """
    admin = ROOT / "tests" / "admin"
    if collection_path != admin or os.environ.get("DJANGO_SETTINGS_MODULE") == ADMIN_SETTINGS:
        return None
    here = config.invocation_params.dir
    asked = [Path(here, arg.split("::")[0]).resolve() for arg in config.args]
    if any(path == admin or path in admin.parents for path in asked):
        config._mailserver_admin_left_out = True
    return True


def pytest_terminal_summary(terminalreporter, config):
    if getattr(config, "_mailserver_admin_left_out", False):
        terminalreporter.write_line(
            f"tests/admin left out: it runs as `pytest --ds={ADMIN_SETTINGS} tests/admin` "
            "(bin/test runs it)"
        )


@pytest.fixture(scope="session")
def process_env(tmp_path_factory):
    """
    Environment for real processes (django-mailpipe, manage.py) running the
    test project on a migrated SQLite file of their own.
    """
    db = tmp_path_factory.mktemp("db") / "mail.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(ROOT),
        "MAILSERVER_TEST_DB": str(db),
    }
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--verbosity", "0"], env=env, check=True
    )
    return env
