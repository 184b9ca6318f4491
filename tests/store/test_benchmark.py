"""
benchmarks/store.py and store_path.py keep running, on this run's database:
store.py's --quick mode, parts (a) and (c) (part (b), through Postfix, is
tests/mta's), and store_path.py with its floor. Not timed: each script
stops when a delivery does not open its ticket and write its reply (or the
floor's statements do not make their rows), with the store and without.
"""

import os
import subprocess
import sys

from .conftest import POSTGRES, ROOT

DATABASE = "postgres" if POSTGRES else "sqlite"


def run(script: str, *args: str, timeout: float) -> str:
    """The script's standard output, once it has run to its end without an error."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_cost_of_durability_benchmark_runs():
    out = run(
        "store.py", "--quick", "--parts=a,c", f"--databases={DATABASE}", "--strict", timeout=900
    )
    for line in (f"(a) pipe, {DATABASE}: ", f"(c) runmailserver, {DATABASE}: "):
        assert line in out, out


def test_the_store_path_benchmark_runs_with_its_floor():
    out = run("store_path.py", f"--database={DATABASE}", "--messages=20", "--floor", timeout=300)
    for line in ("statements per message", "CPU per message", "Floor, the SQL alone"):
        assert line in out, out
