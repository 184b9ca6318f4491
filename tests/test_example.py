"""The README's first command, and the example project's own tests."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example"


def clean_env():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHON"] = sys.executable
    return env


def test_demo_shows_the_reply_and_each_outcome():
    proc = subprocess.run(
        ["bash", str(EXAMPLE / "demo.sh")],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # The reply the view sent, printed by the console e-mail backend.
    assert "Subject: [#1] The printer is on fire" in out
    assert "Reply-To: ticket-1@bugs.example.com" in out
    assert "<help@bugs.example.com> tickets:open: 250 2.0.0 delivered\nexit status 0" in out
    # Delivered again: answered from the store, neither a second ticket nor reply.
    assert out.count("<help@bugs.example.com> tickets:open: 250 2.0.0 delivered") == 2
    assert out.count("Subject: [#1]") == 1 and "[#2]" not in out
    assert "<ticket-1@bugs.example.com> tickets:reply: 250 2.0.0 accepted, no reply" in out
    assert "<newsletter@example.com> newsletter: 250 2.0.0 accepted, no reply" in out
    assert "550 5.1.1 <nobody@example.com>: no such mailbox" in out
    # The pipe's line, on a line of its own.
    assert "\n5.1.1 <nobody@example.com>: no such mailbox\nexit status 67 (" in out
    assert out.count("exit status 67") == 2
    assert "exit status 0" in out


def test_example_project_tests_pass():
    proc = subprocess.run(
        [sys.executable, "manage.py", "test", "tickets", "-v", "2"],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Ran 6 tests" in proc.stderr


def test_example_check_is_clean():
    proc = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    assert proc.returncode == 0 and "no issues" in proc.stdout
