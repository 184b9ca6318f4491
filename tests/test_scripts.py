"""
bin/test as a person runs it: it changes the system only when asked, and
its header and docs/contributing.md list every change that .ci/install-mtas.sh
makes.
"""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALLER = (ROOT / ".ci" / "install-mtas.sh").read_text()
FAKE_PYTHON = """#!/bin/sh
# Stands in for python: a virtualenv's (-c answers "not externally managed"),
# and records every other command bin/test gives it.
[ "$1" = -c ] && exit 1
echo "$*" >> "{log}"
"""


def run_bin_test(*args, env=None, user=None):
    """bin/test with a python that only records what it is asked to do."""
    with tempfile.TemporaryDirectory() as directory:
        os.chmod(directory, 0o755)
        # A copy, which any user may run: the checkout may be in a home
        # directory that the user of the test cannot enter.
        script = Path(directory) / "bin" / "test"
        script.parent.mkdir()
        script.parent.chmod(0o755)
        shutil.copy(ROOT / "bin" / "test", script)
        log = Path(directory) / "calls"
        python = Path(directory) / "python"
        python.write_text(FAKE_PYTHON.format(log=log))
        python.chmod(0o755)
        log.write_text("")
        log.chmod(0o666)
        environ = {
            k: v
            for k, v in os.environ.items()
            # What the run around it set for itself (CI's install switches,
            # its ban on skips) is not this bin/test's to see.
            if k not in ("CI", "PYTHON", "MAILSERVER_FORBID_SKIPS")
            and not k.startswith("MAILSERVER_INSTALL_")
        }
        proc = subprocess.run(
            [str(script), *args],
            env={**environ, "PYTHON": str(python), **(env or {})},
            capture_output=True,
            text=True,
            user=user,
            timeout=60,
        )
        return proc, log.read_text().splitlines()


def test_without_the_option_only_the_project_is_installed_and_tested():
    proc, calls = run_bin_test("-x", "-k", "pipe and not slow")
    assert proc.returncode == 0, proc.stderr
    assert calls == [
        "-m pip install --quiet --disable-pip-version-check -e .[test,docs,release]",
        "-m ruff check .",
        "-m ruff format --check .",
        "-m mypy",
        "-m pytest -x -k pipe and not slow",
        "-m pytest --ds=tests.admin_settings tests/admin",
    ]
    assert "install-mtas" not in proc.stdout


def test_installing_the_mtas_or_the_browser_needs_root():
    # As root, ask as someone else: the point is not to install anything here.
    user = "nobody" if os.geteuid() == 0 else None
    for args, env in [
        (["--install-mtas"], {}),
        ([], {"MAILSERVER_INSTALL_MTAS": "1"}),
        (["--install-browser"], {}),
        ([], {"MAILSERVER_INSTALL_BROWSER": "1"}),
    ]:
        proc, calls = run_bin_test(*args, env=env, user=user)
        assert proc.returncode == 1
        assert "must run as root" in proc.stderr
        assert calls == []


def installer_changes() -> set[str]:
    """The packages, users and files .ci/install-mtas.sh installs or creates."""
    script = INSTALLER.replace("\\\n", " ")  # continuation lines joined
    names = set()
    for args in re.findall(r"^\s*apt_install (.+)$", script, re.M):
        names.update(args.split())
    names.update(re.findall(r"^EXIM_PKG=(\S+)", script, re.M))
    names.update(re.findall(r"(?:useradd|groupadd) .* (\S+)$", script, re.M))
    names.update(re.findall(r"install -m \d+ -o root -g root \S+ (/\S+)", script))
    names.update(re.findall(r"install -d .* (/etc/\S+)", script))
    if "postfix stop" in script:
        names.add("postfix stop")
    return {"mailpipe" if n == '"$PIPE_USER"' else n for n in names}


def test_every_change_the_installer_makes_is_listed():
    changes = installer_changes()
    assert {"postfix", "python3-venv", "libidn12", "Debian-exim", "mailpipe"} <= changes
    assert {"/usr/sbin/exim4", "/etc/exim4/trusted_configs", "postfix stop"} <= changes
    header = (ROOT / "bin" / "test").read_text().split("set -euo")[0]
    # The README sends whoever runs bin/test --install-mtas there.
    guide = (ROOT / "docs" / "contributing.md").read_text()
    for change in sorted(changes):
        assert change in header, f"bin/test does not mention {change}"
        assert change in guide, f"docs/contributing.md does not mention {change}"
