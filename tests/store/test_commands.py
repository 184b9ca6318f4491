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
        [sys.executable, "-m", "django", "startmailapp", "helpdesk", "--settings",
         "tests.settings"],
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
        [sys.executable, "-m", "django", "startmailapp", "other", "-v", "0", "--settings",
         "tests.settings"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert quiet.stdout == ""
