"""
The documentation: it builds without a warning, the tutorial runs as
written, every setting has its line, and the README's links lead somewhere.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_the_docs_build_with_warnings_as_errors(tmp_path):
    pytest.importorskip("sphinx", reason="the docs extra: pip install -e .[docs]")
    pytest.importorskip("furo", reason="the docs extra: pip install -e .[docs]")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The generated parts are there: a row of the outcome table, a setting
    # with its default, a command's options, a docstring.
    outcomes = (tmp_path / "html" / "reference" / "outcomes.html").read_text()
    assert "unknown_recipient" in outcomes and "5.1.1" in outcomes
    assert "MAIL_REPLY_MAILER" in (tmp_path / "html" / "reference" / "settings.html").read_text()
    commands = (tmp_path / "html" / "reference" / "commands.html").read_text()
    assert "--recipient" in commands and "sendreplies" in commands
    request = (tmp_path / "html" / "reference" / "request.html").read_text()
    assert "get_recipient_display" in request


def test_every_setting_has_its_description():
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        from mailserver_docs import settings_groups
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    from mailserver.conf import DEFAULTS

    groups = settings_groups()
    assert [name for names, _ in groups for name in names] == list(DEFAULTS)
    assert all(comment for _, comment in groups)


def test_the_readme_links_lead_to_files_that_exist():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [link for link in links if "://" not in link]
    assert local, "the README links to the documentation"
    for link in local:
        assert (ROOT / link).exists(), link


# The tutorial, run as a reader would: its commands in a shell, its files
# written where their captions say, and the output it shows checked.
SKIPPED = ("python -m venv ", ". venv/bin/activate", "python -m pip install ")


def tutorial_steps(text: str):
    """(kind, caption or command, body or expected lines) in the order of the page."""
    fence = re.compile(
        r"^```(console|\{code-block\} \w+)\n(?::caption: ([^\n]+)\n\n)?(.*?)^```\n", re.M | re.S
    )
    for match in fence.finditer(text):
        kind, caption, body = match[1], match[2], match[3]
        if kind == "console":
            command = None
            expected: list[str] = []
            for line in body.splitlines():
                if line.startswith("$ "):
                    if command is not None:
                        yield "run", command, expected
                    command, expected = line[2:], []
                elif line.strip():
                    expected.append(line.strip())
            if command is not None:
                yield "run", command, expected
        elif caption:
            yield "file", caption, body


def test_the_tutorial_runs_as_written(tmp_path):
    text = (DOCS / "tutorial.md").read_text()
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    # python, django-admin and django-mailpipe are this environment's.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cwd = tmp_path
    ran = 0
    for kind, what, body in tutorial_steps(text):
        if kind == "file":
            path, _, how = what.partition(" (")
            target = cwd / path
            if how == "add at the end)":
                with target.open("a") as f:
                    f.write("\n" + body)
            else:
                assert not how, what
                target.write_text(body)
            continue
        if what.startswith(SKIPPED):
            continue  # this environment has the package already
        if what.startswith("cd "):
            cwd = cwd / what[3:]
            continue
        proc = subprocess.run(
            ["bash", "-c", what],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"$ {what}\n{output}"
        lines = [line.strip() for line in output.splitlines()]
        for line in body:
            assert line in lines, f"$ {what}\nexpected {line!r} in:\n{output}"
        ran += 1
    assert ran >= 8
