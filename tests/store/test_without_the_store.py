"""Without mailserver.store in INSTALLED_APPS, nothing of it is loaded or changed."""

import subprocess
import sys

SCRIPT = """
import sys
import django
django.setup()
from mailserver.envelope import Envelope
from mailserver.handlers import dispatch
result = dispatch(b"Subject: x\\n\\nhello\\n", Envelope(recipient="record@example.com"))
print(result.outcome.name, sorted(m for m in sys.modules if m.startswith("mailserver.store")))
"""


def test_dispatch_loads_nothing_of_the_store_when_it_is_not_installed(process_env):
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=process_env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "IGNORED []\n"
