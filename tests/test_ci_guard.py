import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_skips_fail_when_ci_forbids_them(tmp_path):
    (tmp_path / "test_skipping.py").write_text(
        "import pytest\n\ndef test_needs_an_mta():\n    pytest.skip('no MTA here')\n"
    )
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "tests.conftest",
        "-p",
        "no:cacheprovider",
        "-c",
        os.devnull,
        "--rootdir",
        str(tmp_path),
        str(tmp_path),
    ]
    env = {k: v for k, v in os.environ.items() if k != "MAILSERVER_FORBID_SKIPS"}
    env["PYTHONPATH"] = str(ROOT)
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    allowed = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert allowed.returncode == 0, allowed.stdout
    assert "1 skipped" in allowed.stdout
    env["MAILSERVER_FORBID_SKIPS"] = "1"
    forbidden = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert forbidden.returncode == 1
    assert "skipped, which CI forbids: " in forbidden.stdout and "no MTA here" in forbidden.stdout
