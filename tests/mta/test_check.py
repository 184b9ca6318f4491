"""
``django-mailpipe --check`` as the deployment docs say to run it: as the
pipe user, with the command line the MTA runs, in the virtualenv the MTAs
deliver through. Here the user really is not root, so what it cannot do is
found by trying, not guessed.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.mta


def check(runtime, *args, settings=None):
    result = runtime.run_as_user(
        [
            runtime.command,
            "--check",
            f"--pythonpath={runtime.site}",
            f"--settings={settings or runtime.settings_module}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = dict(
        (line.split(": ", 1)[0].split(None, 1)[1], line.split(None, 1)[0])
        for line in result.stdout.splitlines()
    )
    return result.returncode, lines, result.stdout + result.stderr


def test_the_deployment_passes_as_the_pipe_user(pipe_runtime):
    status, lines, out = check(pipe_runtime, f"--log-file={pipe_runtime.records}/check.log")
    assert status == 0, out
    assert set(lines.values()) == {"OK"}, out
    assert list(lines) == [
        "user",
        "python",
        "log file",
        "settings",
        "mailconf",
        "database",  # the test project has none
        "compiled",
    ]
    assert f"OK   user: {pipe_runtime.user} (uid " in out


def test_what_the_pipe_user_cannot_do(pipe_runtime):
    # A log file in a directory only root may write.
    status, lines, out = check(pipe_runtime, f"--log-file={pipe_runtime.site}/pipe.log")
    assert status == 1 and lines["log file"] == "FAIL", out
    assert f"{pipe_runtime.user} cannot write {pipe_runtime.site}, so pipe.log cannot" in out
    # A settings module added after the deployment was byte-compiled: the
    # pipe user cannot write its .pyc, and the advice names the directory.
    late = pipe_runtime.site / "late_settings.py"
    late.write_text(f"from {pipe_runtime.settings_module} import *  # noqa\n")
    late.chmod(0o644)
    try:
        status, lines, out = check(pipe_runtime, settings="late_settings")
    finally:
        late.unlink()
    assert status == 1 and lines["compiled"] == "FAIL", out
    assert "1 of " in out and f"{pipe_runtime.user} cannot write them" in out
    assert f"-m compileall -q {pipe_runtime.site}" in out
