"""The store's way in for a new project: startmailapp says how."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_startmailapp_recommends_the_store_for_production(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "django",
            "startmailapp",
            "helpdesk",
            "--settings",
            "tests.settings",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert (tmp_path / "helpdesk" / "mailbox.py").exists()
    assert 'add "mailserver.store" to INSTALLED_APPS' in proc.stdout
    assert "MAIL_STORE_ROOT" in proc.stdout and "sendreplies" in proc.stdout
    quiet = subprocess.run(
        [
            sys.executable,
            "-m",
            "django",
            "startmailapp",
            "other",
            "-v",
            "0",
            "--settings",
            "tests.settings",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert quiet.stdout == ""


def test_bin_test_installs_postgres_only_as_root_when_asked():
    from tests.test_scripts import run_bin_test

    user = "nobody" if os.geteuid() == 0 else None
    for args, env in [(["--install-postgres"], {}), ([], {"MAILSERVER_INSTALL_POSTGRES": "1"})]:
        proc, calls = run_bin_test(*args, env=env, user=user)
        assert proc.returncode == 1
        assert "--install-postgres installs and starts PostgreSQL and must run as root" in (
            proc.stderr
        )
        assert calls == []


def test_bin_test_without_postgres_says_so_and_ci_fails():
    from tests.test_scripts import run_bin_test

    # The stand-in python cannot connect to anything.
    proc, calls = run_bin_test()
    assert proc.returncode == 0
    assert "no PostgreSQL at 127.0.0.1:5432" in proc.stderr
    assert not any("tests/store" in call for call in calls)
    proc, calls = run_bin_test(env={"MAILSERVER_FORBID_SKIPS": "1"})
    assert proc.returncode == 1
    assert "which CI forbids" in proc.stderr


def test_the_models_and_their_migrations_agree(db):
    from django.core.management import call_command

    call_command("makemigrations", "mailserver_store", "--check", "--dry-run", verbosity=0)
