"""Without mailserver.store in INSTALLED_APPS, nothing of it is loaded or changed."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

SCRIPT = """
import sys
import django
django.setup()
from mailserver.envelope import Envelope
from mailserver.handlers import dispatch
result = dispatch(b"Subject: x\\n\\nhello\\n", Envelope(recipient="record@example.com"))
print(result.outcome.name, sorted(m for m in sys.modules if m.startswith("mailserver.store")))
"""


def test_dispatch_loads_nothing_of_the_store_when_it_is_not_installed(tmp_path):
    # The suite's settings, on SQLite whichever database this run tests.
    env = {
        **{k: v for k, v in os.environ.items() if k != "MAILSERVER_TEST_DATABASE"},
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(ROOT),
        "MAILSERVER_TEST_DB": str(tmp_path / "mail.sqlite3"),
    }
    migrate = [sys.executable, "-m", "django", "migrate", "--verbosity", "0"]
    subprocess.run(migrate, env=env, check=True)
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "IGNORED []\n"
