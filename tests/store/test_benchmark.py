"""
benchmarks/store.py and store_path.py keep running: its --quick mode, parts (a) and (c), on
this run's database (part (b), through Postfix, is tests/mta's). Not timed:
the script itself stops when a delivery does not open its ticket and write
its reply, with the store and without.
"""

import os
import subprocess
import sys

from .conftest import POSTGRES, ROOT


def test_the_cost_of_durability_benchmark_runs():
    database = "postgres" if POSTGRES else "sqlite"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "store.py"),
            "--quick",
            "--parts=a,c",
            f"--databases={database}",
            "--strict",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for line in (f"(a) pipe, {database}: ", f"(c) runmailserver, {database}: "):
        assert line in done.stdout, done.stdout


def test_the_store_path_benchmark_runs_with_its_floor():
    database = "postgres" if POSTGRES else "sqlite"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "store_path.py"),
            f"--database={database}",
            "--messages=20",
            "--floor",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for line in ("statements per message", "CPU per message", "Floor, the SQL alone"):
        assert line in done.stdout, done.stdout
