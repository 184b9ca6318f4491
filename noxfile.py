"""
The test matrix: every Python and Django release django-mailserver supports.

    nox                       what .ci/run runs: every cell
    nox -s tests              the fast part on every cell but the newest
    nox -s "tests(python='3.12', django='6.0')"   one cell
    nox -s full               bin/test on the newest pair: ruff, mypy, the whole
                              suite (MTAs and PostgreSQL when bin/test is asked
                              to install them), the wheel, the docs
    nox -s docs               the documentation, warnings as errors
    nox -l                    the list

The fast part leaves out what needs a real MTA (tests/mta), the hostile
corpus (tests/hostile: parsing, which does not depend on Django's version),
the admin's browser test, the second run of the store's and the admin's
tests on PostgreSQL, and the wheel and the docs, which the full session
builds: together they are what takes the time, and the newest pair runs
them. Deprecation warnings from our own code are errors in
every cell (pyproject.toml's filterwarnings).

The interpreters are found on the PATH as ``python3.X``, or else where pyenv
keeps them (~/.pyenv/versions/3.X.*), so a machine with pyenv needs no shims
on the PATH; nox never downloads one. A missing interpreter fails its cells.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent

# Each Django release and the Pythons it supports, as Django's own
# documentation lists them, kept to the Pythons we test (README: "Supported
# versions"; pyproject.toml's requires-python, Django range and classifiers
# say the same, which tests/test_packaging.py checks).
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
DJANGO_PYTHONS = {
    "4.2": ["3.10", "3.11", "3.12"],
    "5.2": ["3.10", "3.11", "3.12", "3.13"],
    "6.0": ["3.12", "3.13"],
    "6.1": ["3.12", "3.13"],
}
NEWEST = ("3.13", "6.1")

FAST = [
    "--ignore=tests/mta",
    "--ignore=tests/hostile",
    "--ignore=tests/test_packaging.py",
    "--ignore=tests/test_docs.py",
    "-m",
    "not mta",
]

# What .ci/run runs; the docs are built (warnings as errors) inside full.
nox.options.sessions = ["tests", "full"]
nox.options.download_python = "never"
nox.options.error_on_missing_interpreters = True
nox.options.default_venv_backend = "venv"


def find_python(version: str) -> str | None:
    """
    An interpreter of ``version`` that runs: ``python3.X`` on the PATH (a
    pyenv shim there may name a version pyenv does not enable, so each
    candidate is asked where it really is), else pyenv's newest 3.X.*, else
    the system's.
    """
    candidates = [shutil.which(f"python{version}")]
    pyenv = Path(os.environ.get("PYENV_ROOT", "~/.pyenv")).expanduser()
    installed = glob.glob(f"{pyenv}/versions/{version}.*/bin/python{version}")
    candidates += sorted(installed, key=_release, reverse=True)
    candidates += [f"/usr/local/bin/python{version}", f"/usr/bin/python{version}"]
    for candidate in filter(None, candidates):
        try:
            proc = subprocess.run(
                [
                    candidate,
                    "-c",
                    "import sys; print('%d.%d' % sys.version_info[:2], sys.executable)",
                ],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except OSError:
            continue
        found, _, executable = proc.stdout.strip().partition(" ")
        if proc.returncode == 0 and found == version:
            return executable  # the interpreter itself, not a shim in front of it
    return None


def _release(path: str) -> list[int]:
    """3.12.10 after 3.12.9: the release in .../versions/3.12.10/bin/python3.12."""
    return [int(part) for part in Path(path).parts[-3].split(".") if part.isdigit()]


def put_pythons_on_path() -> None:
    """
    nox looks for ``python3.X`` on the PATH: link each interpreter found into
    .nox/bin, first on the PATH, so that it finds them wherever they live.
    """
    bin_dir = ROOT / ".nox" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for version in PYTHONS:
        link = bin_dir / f"python{version}"
        found = find_python(version)
        if link.is_symlink() or link.exists():
            if found and os.path.realpath(link) == os.path.realpath(found):
                continue
            link.unlink()
        if found and os.path.realpath(found) != os.path.realpath(link):
            link.symlink_to(found)
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


put_pythons_on_path()


def install(session: nox.Session, django: str, *extras: str) -> None:
    """The project, editable, with ``extras``, on the cell's Django release."""
    session.install(
        "--disable-pip-version-check", "-e", f".[{','.join(extras)}]", f"Django=={django}.*"
    )
    session.run(
        "python",
        "-c",
        "import django, sys; print('Django', django.get_version(), 'on', sys.version)",
    )


@nox.session
@nox.parametrize(
    "python,django",
    [
        (python, django)
        for django, pythons in DJANGO_PYTHONS.items()
        for python in pythons
        if (python, django) != NEWEST
    ],
)
def tests(session: nox.Session, django: str) -> None:
    """The fast part of the suite on one cell (extra arguments go to pytest)."""
    install(session, django, "test")
    pytest = ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    session.run(*pytest, *FAST, *session.posargs)
    # The store's admin, with its settings, as bin/test runs it; its browser
    # test (Chromium) runs on the newest pair only.
    session.run(
        *pytest, "--ds=tests.admin_settings", "tests/admin", "--ignore=tests/admin/test_browser.py"
    )


@nox.session(python=NEWEST[0])
def full(session: nox.Session) -> None:
    """
    bin/test on the newest pair: ruff, mypy and the whole suite (the MTAs and
    PostgreSQL as bin/test is told: .ci/run tells it to install them).
    """
    install(session, NEWEST[1], "test", "docs", "release")
    session.run(
        "bash",
        "bin/test",
        *session.posargs,
        env={"PYTHON": str(Path(session.virtualenv.location) / "bin" / "python")},
        external=True,
    )


@nox.session(python=NEWEST[0])
def docs(session: nox.Session) -> None:
    """The documentation as Read the Docs builds it, every warning an error."""
    install(session, NEWEST[1], "docs")
    session.run(
        "python",
        "-m",
        "sphinx",
        "-W",
        "--keep-going",
        "-n",
        "-b",
        "html",
        "docs",
        "docs/_build/html",
    )
