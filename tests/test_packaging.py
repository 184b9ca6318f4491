"""
The release as a user gets it: the sdist and the wheel build and pass
``twine check``; the wheel holds the package and its data and nothing of
the tests; installed (not editable) into a fresh virtualenv, it runs the
example project, a real django-mailpipe from that virtualenv included. And
pyproject.toml declares what noxfile.py tests, no more and no less.
"""

import ast
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

import mailserver

ROOT = Path(__file__).resolve().parent.parent
tomllib = pytest.importorskip("tomllib", reason="tomllib came in Python 3.11")


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def matrix() -> tuple[list[str], dict[str, list[str]]]:
    """PYTHONS and DJANGO_PYTHONS as noxfile.py states them (read: nox may be absent)."""
    found = {}
    for node in ast.parse((ROOT / "noxfile.py").read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("PYTHONS", "DJANGO_PYTHONS"):
                found[node.targets[0].id] = ast.literal_eval(node.value)
    return found["PYTHONS"], found["DJANGO_PYTHONS"]


def test_pyproject_declares_the_versions_the_matrix_tests():
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    pythons, djangos = matrix()
    project = pyproject()["project"]
    classifiers = project["classifiers"]
    prefix = "Programming Language :: Python :: 3."
    assert [
        c.removeprefix("Programming Language :: Python :: ")
        for c in classifiers
        if c.startswith(prefix)
    ] == pythons
    assert [
        c.removeprefix("Framework :: Django :: ")
        for c in classifiers
        if c.startswith("Framework :: Django :: ")
    ] == list(djangos)
    assert project["requires-python"] == f">={pythons[0]}"
    assert sorted({p for ps in djangos.values() for p in ps}, key=Version) == pythons
    # The Django range admits exactly the tested releases among Django's
    # from the oldest tested one on (and the next, not yet released).
    [django] = [d for d in project["dependencies"] if d.lower().startswith("django")]
    spec = SpecifierSet(django[len("django") :])
    releases = ["4.2", "5.0", "5.1", "5.2", "6.0", "6.1"]
    assert [r for r in releases if spec.contains(f"{r}.1")] == list(djangos)


def test_classifiers_are_ones_pypi_knows():
    trove = pytest.importorskip("trove_classifiers")
    assert set(pyproject()["project"]["classifiers"]) <= trove.classifiers


def test_readme_says_which_versions_are_supported():
    pythons, djangos = matrix()
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Supported versions", 1)[1].split("\n## ", 1)[0]
    for version in [*pythons, *djangos]:
        assert version in section, version


def test_the_version_is_said_in_one_place():
    project = pyproject()
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "mailserver.__version__"}
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## {mailserver.__version__} " in changelog


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """The sdist and the wheel, built as a release is: `python -m build`."""
    pytest.importorskip("build", reason="the release extra: pip install -e .[release]")
    out = tmp_path_factory.mktemp("dist")
    # A copy of the checkout, so that the build's egg-info and build/ land
    # outside it.
    source = tmp_path_factory.mktemp("source") / "django-mailserver"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git",
            ".nox",
            ".venv",
            "__pycache__",
            "*.sqlite3",
            "_build",
            "build",
            "dist",
            "*.egg-info",
            "mailstore",
            "sent",
            "flags",
        ),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [wheel] = out.glob("*.whl")
    [sdist] = out.glob("*.tar.gz")
    return wheel, sdist


def test_twine_check_passes(dist):
    pytest.importorskip("twine", reason="the release extra: pip install -e .[release]")
    proc = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dist)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASSED") == 2


def test_the_wheel_holds_the_package_and_its_data_and_nothing_of_the_tests(dist):
    wheel, _ = dist
    assert wheel.name == f"django_mailserver-{mailserver.__version__}-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    for name in [
        "mailserver/py.typed",
        "mailserver/__main__.py",
        "mailserver/templates/app_template/mailbox.py-tpl",
        "mailserver/templates/app_template/tests.py-tpl",
        "mailserver/store/migrations/__init__.py",
        "mailserver/store/migrations/0001_initial.py",
    ]:
        assert name in names
    # Every file of the package in the checkout is in it: modules,
    # migrations, templates, static files.
    for path in (ROOT / "mailserver").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            assert path.relative_to(ROOT).as_posix() in names, path
    tops = {name.split("/")[0] for name in names}
    assert tops == {"mailserver", f"django_mailserver-{mailserver.__version__}.dist-info"}
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    metadata = (
        zipfile.ZipFile(wheel)
        .read(f"django_mailserver-{mailserver.__version__}.dist-info/METADATA")
        .decode()
    )
    assert f"Version: {mailserver.__version__}\n" in metadata
    assert "License-Expression: BSD-3-Clause\n" in metadata
    assert (
        "django-mailpipe = mailserver.pipe:main"
        in zipfile.ZipFile(wheel)
        .read(f"django_mailserver-{mailserver.__version__}.dist-info/entry_points.txt")
        .decode()
    )


def test_the_sdist_is_the_whole_source(dist):
    _, sdist = dist
    top = f"django_mailserver-{mailserver.__version__}"
    names = set(tarfile.open(sdist).getnames())
    for name in [
        "CHANGELOG.md",
        "LICENSE",
        "noxfile.py",
        ".readthedocs.yaml",
        "docs/conf.py",
        "tests/settings.py",
        "example/manage.py",
        "contrib/README.md",
        "mailserver/py.typed",
    ]:
        assert f"{top}/{name}" in names, name
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".sqlite3"))]


def run(command, **kwargs):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE")}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, **kwargs)


def test_the_wheel_installed_in_a_fresh_virtualenv_runs_the_example(dist, tmp_path):
    wheel, _ = dist
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python, bin_dir = env_dir / "bin" / "python", env_dir / "bin"
    proc = run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel])
    assert proc.returncode == 0, proc.stderr
    # The package imported is the one installed, not the checkout.
    proc = run([python, "-c", "import mailserver; print(mailserver.__file__)"], cwd=tmp_path)
    assert Path(proc.stdout.strip()).is_relative_to(env_dir), proc.stdout + proc.stderr
    proc = run([bin_dir / "django-mailpipe", "--version"])
    assert proc.stdout.strip() == f"django-mailpipe (django-mailserver) {mailserver.__version__}"

    example = tmp_path / "example"
    shutil.copytree(
        ROOT / "example", example, ignore=shutil.ignore_patterns("*.sqlite3", "mailstore")
    )
    manage = [python, "manage.py"]
    proc = run([*manage, "migrate", "--verbosity", "0"], cwd=example)
    assert proc.returncode == 0, proc.stderr
    proc = run([*manage, "showmigrations", "mailserver_store"], cwd=example)
    assert "[X] 0001_initial" in proc.stdout

    def pipe(message, sender, recipient):
        log = tmp_path / "pipe.log"
        log.unlink(missing_ok=True)
        with open(example / "messages" / message, "rb") as stdin:
            proc = run(
                [
                    bin_dir / "django-mailpipe",
                    "--settings=exampleproject.settings",
                    f"--pythonpath={example}",
                    f"--log-file={log}",
                    f"--sender={sender}",
                    f"--recipient={recipient}",
                ],
                stdin=stdin,
                cwd=tmp_path,
            )
        return proc, log.read_text() if log.exists() else ""

    # A new ticket: delivered, and the reply (the console backend prints it
    # where the pipe's output goes: the log file).
    proc, log = pipe("new-ticket.eml", "ann@example.org", "help@bugs.example.com")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", ""), log
    assert "Subject: [#1] The printer is on fire" in log
    # The MTA delivers it again: the store answers, no second ticket or reply.
    proc, log = pipe("new-ticket.eml", "ann@example.org", "help@bugs.example.com")
    assert proc.returncode == 0 and "Subject:" not in log
    proc, _ = pipe("comment.eml", "ann@example.org", "ticket-1@bugs.example.com")
    assert proc.returncode == 0
    proc, _ = pipe("unknown.eml", "bob@example.org", "nobody@example.com")
    assert proc.returncode == 67
    assert proc.stdout == "5.1.1 <nobody@example.com>: no such mailbox"
    with sqlite3.connect(example / "db.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM tickets_ticket").fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM tickets_comment").fetchone() == (1,)

    # The example's own tests, on the installed mailserver.test.
    proc = run([*manage, "test", "tickets"], cwd=example)
    assert proc.returncode == 0, proc.stderr
    # startmailapp's templates came with the wheel.
    proc = run([*manage, "startmailapp", "desk"], cwd=example)
    assert proc.returncode == 0, proc.stderr
    assert (example / "desk" / "mailbox.py").is_file()
    assert (example / "desk" / "tests.py").is_file()
