"""
benchmarks/store.py's part (b) keeps running: Postfix -> LMTP ->
runmailserver with the store and without, in its --quick mode. Not timed:
the script stops when a message is not sent or opens no ticket.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import _skip_unless_ready
from .harness import REPO

pytestmark = pytest.mark.mta


def test_the_cost_of_durability_through_postfix_runs():
    _skip_unless_ready("postfix")
    _skip_unless_ready("server")
    # PostgreSQL too where it answers; CI, which has it, must not leave it out.
    strict = os.environ.get("MTA_REQUIRED") or os.environ.get("MAILSERVER_FORBID_SKIPS")
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "store.py"),
            "--quick",
            "--parts=b",
            *(["--strict"] if strict else []),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(b) Postfix+LMTP, sqlite: " in done.stdout, done.stdout
