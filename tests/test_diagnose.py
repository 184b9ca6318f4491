"""
``django-mailpipe --check`` as a person runs it while deploying: a real
process, with the options the MTA's command line gives, on a healthy
project and on broken ones.
"""

import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
AS_ROOT = os.geteuid() == 0


def check(env, *args, cwd=None):
    """Run --check; returns (exit status, {check name: (status, text)}, output)."""
    proc = subprocess.run(
        [sys.executable, "-m", "mailserver.pipe", "--check", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )
    found = {}
    for line in proc.stdout.splitlines():
        status, _, rest = line.partition(" ")
        name, _, text = rest.strip().partition(": ")
        assert status in ("OK", "WARN", "FAIL"), line
        assert name not in found, f"{name} checked twice:\n{proc.stdout}"
        found[name] = (status, text)
    return proc.returncode, found, proc.stdout + proc.stderr


@pytest.fixture
def env(process_env):
    env = dict(process_env)
    # Let this run write the .pyc files it needs, as a deployment's would be.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def project(tmp_path, settings_text="", name="mysite"):
    """A project of its own in tmp_path, built on the test settings."""
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "settings.py").write_text("from tests.settings import *  # noqa\n" + settings_text)
    return tmp_path


@pytest.fixture
def deployment(env):
    """
    A project laid out as a deployment would be: where a user other than the
    one running the tests could read it and write its database and log.
    """
    root = Path(tempfile.mkdtemp(prefix="django-mailserver-check-"))
    try:
        root.chmod(0o755)
        (root / "site").mkdir()
        site = project(root / "site")
        data = root / "data"
        data.mkdir()
        data.chmod(0o777)
        db = data / "mail.sqlite3"
        env["MAILSERVER_TEST_DB"] = str(db)
        subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--verbosity", "0"], env=env, check=True
        )
        db.chmod(0o666)
        yield site, data
    finally:
        shutil.rmtree(root)


def test_a_healthy_project_passes_with_the_mtas_options(env, deployment):
    site, data = deployment
    del env["DJANGO_SETTINGS_MODULE"]
    log = data / "pipe.log"
    # The options of contrib/postfix/master.cf, with the macros Postfix fills in.
    status, found, out = check(
        env,
        f"--pythonpath={site}",
        "--settings=mysite.settings",
        "--sender=",
        "--recipient=someone@example.com",
        "--queue-id=",
        f"--log-file={log}",
        cwd="/",
    )
    assert status == 0, out
    assert list(found) == [
        "user",
        "python",
        "log file",
        "settings",
        "mailconf",
        "database default",
        "compiled",
    ]
    assert found["user"][0] == ("WARN" if AS_ROOT else "OK")
    assert found["python"][0] != "FAIL"
    for name in ("log file", "settings", "mailconf", "database default", "compiled"):
        assert found[name][0] == "OK", out
    assert found["settings"][1].startswith(f"mysite.settings ({site / 'mysite' / 'settings.py'})")
    assert "ROOT_MAILCONF tests.mailapp.mailconf loads" in found["mailconf"][1]
    assert found["database default"][1].endswith("reachable, migrations applied")
    assert not log.exists()  # checked, not created: the pipe user creates it


def test_settings_that_cannot_be_imported(env, tmp_path):
    del env["DJANGO_SETTINGS_MODULE"]
    status, found, out = check(env, "--settings=mysite.settings", cwd=tmp_path)
    assert status == 1
    assert found["settings"] == (
        "FAIL",
        "Django settings failed to load: ModuleNotFoundError: No module named 'mysite'; "
        "pass --pythonpath with the directory that holds mysite/",
    )
    # What needs Django is not checked: it would only repeat the failure.
    assert "mailconf" not in found and "database default" not in found
    missing = tmp_path / "nowhere"
    status, found, out = check(
        env, "--settings=mysite.settings", f"--pythonpath={missing}", cwd=tmp_path
    )
    assert status == 1
    assert (
        f"--pythonpath {missing} holds no mysite/ ({missing} is not a directory "
        in (found["settings"][1])
    )


def test_log_file_that_cannot_be_written(env, tmp_path):
    missing_dir = tmp_path / "no" / "such"
    status, found, out = check(env, f"--log-file={missing_dir / 'pipe.log'}")
    assert status == 1
    assert found["log file"] == (
        "FAIL",
        f"{missing_dir}, where pipe.log would go, is not a directory",
    )
    log = tmp_path / "pipe.log"
    log.write_text("")
    log.chmod(0o644)
    status, found, out = check(env, f"--log-file={log}")
    if AS_ROOT:
        # Root may write anything; the pipe user may not write root's file.
        assert status == 0, out
        assert found["log file"] == (
            "WARN",
            f"only root can write {log} (owner root, mode 0644): make the pipe user its "
            f"owner (chown mailpipe {log})",
        )
    else:
        log.chmod(0o444)
        status, found, out = check(env, f"--log-file={log}")
        assert status == 1
        assert found["log file"][0] == "FAIL" and f"cannot write {log}" in found["log file"][1]


def test_database_missing_then_unmigrated_then_migrated(env, tmp_path):
    db = tmp_path / "mail.sqlite3"
    env["MAILSERVER_TEST_DB"] = str(db)
    status, found, out = check(env)
    assert status == 1
    assert found["database default"] == (
        "FAIL",
        f"{db} does not exist: run manage.py migrate, then let the pipe user write the file "
        "and its directory",
    )
    assert not db.exists()  # the check does not create it
    sqlite3.connect(db).close()
    db.write_bytes(b"")  # what a connection leaves behind: an empty database
    status, found, out = check(env)
    assert status == 1
    state, text = found["database default"]
    assert state == "FAIL" and "migration(s) not applied (" in text
    assert "contenttypes.0001_initial" in text and ": run manage.py migrate" in text
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--verbosity", "0"], env=env, check=True
    )
    status, found, out = check(env)
    assert status == 0, out
    state, text = found["database default"]
    # Root is told that only root can write the file sqlite3 made for it.
    assert state == ("WARN" if AS_ROOT else "OK")
    assert f"sqlite {db}: reachable, migrations applied" in text


def test_a_mailconf_that_does_not_load(env, tmp_path):
    site = project(tmp_path, "ROOT_MAILCONF = 'mysite.mailconf'\n")
    (site / "mysite" / "mailconf.py").write_text("raise ImportError('oops')\n")
    env["DJANGO_SETTINGS_MODULE"] = "mysite.settings"
    status, found, out = check(env, f"--pythonpath={site}")
    assert status == 1
    assert found["mailconf"] == (
        "FAIL",
        "The mailconf 'mysite.mailconf' cannot be loaded: oops (mailserver.E002)",
    )


def test_modules_without_pyc_files_and_the_advice_that_fixes_it(env, tmp_path):
    site = project(tmp_path)
    env.update(PYTHONDONTWRITEBYTECODE="1", DJANGO_SETTINGS_MODULE="mysite.settings")
    status, found, out = check(env, f"--pythonpath={site}")
    assert status == 1
    state, text = found["compiled"]
    assert state == "FAIL"
    assert "writing them is turned off (PYTHONDONTWRITEBYTECODE or -B)" in text
    advice = text.rpartition(": run ")[2]
    command = shlex.split(advice)
    assert command[:4] == [sys.executable, "-m", "compileall", "-q"]
    assert str(site) in command
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    status, found, out = check(env, f"--pythonpath={site}")
    assert found["compiled"][0] == "OK", out
