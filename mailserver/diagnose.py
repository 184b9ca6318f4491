"""
What django-mailpipe tells a person, as opposed to a mail server.

The MTA reads one short line and an exit status, and the sender of a
bounced message may read that line too, so a view's exception stays out of
it. A person who runs the pipe by hand, at a
terminal, or who runs ``django-mailpipe --check`` as the pipe's user while
setting it up, is owed more: which exception deferred the message and where
its traceback went, or which part of the installation the pipe user cannot
use and how to fix it.

Loaded only for those people, and by a run whose settings are not found:
the MTA's ordinary runs never import this module.

``--check`` takes the pipe's own options, so that it can be run with the
MTA's command line, as the MTA's user, before the first message is::

    sudo -u mailpipe /srv/mailserver/venv/bin/django-mailpipe --check \\
        --pythonpath=/srv/mailserver/site --settings=mysite.settings

It prints one line per check, ``OK``, ``WARN`` or ``FAIL`` followed by what
was found and, for a failure, what to do, and exits 0 when nothing failed.
"""

from __future__ import annotations

import os
import stat
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .status import Outcome

# --------------------------------------------------------------------------
# settings that are not found


def settings_hint(exc: Exception, pythonpath: str | None) -> str:
    """
    Where to look when the settings module itself was not found: added to
    the pipe's line, for whoever reads the MTA's log.
    """
    module = os.environ["DJANGO_SETTINGS_MODULE"]
    missing = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
    if not missing or not f"{module}.".startswith(f"{missing}."):
        return ""
    parent, _, name = missing.rpartition(".")
    found = getattr(sys.modules.get(parent), "__path__", None)
    if found:  # the package was imported: it is the wrong one, or a typo
        return f"; {parent} was imported from {', '.join(found)}, which has no module {name}"
    top = module.partition(".")[0]
    holder = f"{top}/" if "." in module else f"{module}.py"
    if pythonpath:
        return f"; --pythonpath {pythonpath} holds no {holder}"
    return f"; pass --pythonpath with the directory that holds {holder}"


# --------------------------------------------------------------------------
# a deferral, explained at a terminal


class DeferralReport:
    """
    Collects the exceptions that defer a message during one run, to name
    them under the status line when that line goes to a terminal.

    Exceptions a view or a middleware raise are caught by the dispatch core,
    which sends ``got_message_exception``; the report listens for it. What
    the pipe catches itself is handed to :meth:`explain`.
    """

    def __init__(self, log_file: str | None):
        from .signals import got_message_exception

        self.log_file = log_file
        self.exceptions: list[BaseException] = []
        got_message_exception.connect(self._record, weak=False, dispatch_uid=id(self))

    def _record(self, sender, exception=None, **kwargs) -> None:
        if exception is not None:
            self.exceptions.append(exception)

    def explain(self, outcome: Outcome, line: str, error: BaseException | None = None) -> str:
        """The status line, followed by what deferred the message, if known."""
        if error is not None:
            self.exceptions.append(error)
        if not outcome.is_temporary or not self.exceptions:
            return line
        lines = [line]
        for exc in self.exceptions:
            lines.append(f"  {type(exc).__name__}: {exc}{_where(exc)}")
        if self.log_file:
            lines.append(
                f"  The traceback is in {self.log_file}, unless your LOGGING sends the "
                "mailserver loggers elsewhere."
            )
        else:
            lines.append(
                "  For the traceback, run again with --log-file FILE (or see where your "
                "LOGGING sends the mailserver loggers)."
            )
        return "\n".join(lines)


def _where(exc: BaseException) -> str:
    """The innermost frame in a real file: where to start reading."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<")]
    if not frames:
        return ""
    return f" (at {frames[-1].filename}, line {frames[-1].lineno})"


# --------------------------------------------------------------------------
# django-mailpipe --check


@dataclass
class Finding:
    """One line of ``--check``."""

    status: str  # "OK", "WARN" or "FAIL"
    name: str
    text: str

    @property
    def failed(self) -> bool:
        return self.status == "FAIL"

    def __str__(self) -> str:
        return f"{self.status:<4} {self.name}: {self.text}"


def ok(name: str, text: str) -> Finding:
    return Finding("OK", name, text)


def warn(name: str, text: str) -> Finding:
    return Finding("WARN", name, text)


def fail(name: str, text: str) -> Finding:
    return Finding("FAIL", name, text)


def check_installation(options: dict, out=None) -> int:
    """Print one line per check; 0 when none failed, else 1."""
    out = out or sys.stdout
    failed = False
    for finding in run_checks(
        options.get("settings_module"), options.get("pythonpath"), options.get("log_file")
    ):
        failed = failed or finding.failed
        print(finding, file=out, flush=True)
    return 1 if failed else 0


def run_checks(
    settings_module: str | None, pythonpath: str | None, log_file: str | None
) -> Iterator[Finding]:
    """
    The checks, in the order the pipe needs their subjects. Those that need
    Django set up are left out when the settings fail: their failure would
    only repeat that one.
    """
    yield from _guarded("user", check_user)
    yield from _guarded("python", check_python, pythonpath)
    yield from _guarded("log file", check_log_file, log_file)
    settings = list(_guarded("settings", check_settings, settings_module, pythonpath))
    yield from settings
    if any(f.failed for f in settings):
        return
    yield from _guarded("mailconf", check_mailconf)
    yield from _guarded("database", check_databases)
    yield from _guarded("compiled", check_compiled)


def _guarded(name: str, check: Callable[..., Iterator[Finding]], *args) -> Iterator[Finding]:
    """A check that crashes is a failed check, not a traceback."""
    try:
        yield from check(*args)
    except Exception as exc:
        yield fail(name, f"the check itself failed: {type(exc).__name__}: {exc}")


def _user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def _as_root() -> bool:
    return os.geteuid() == 0


def check_user() -> Iterator[Finding]:
    if _as_root():
        yield warn(
            "user",
            "running as root, which no MTA runs a pipe as: run this check as the account "
            "of the MTA's user= setting (sudo -u mailpipe ...); meanwhile the checks below "
            "ask what users other than root can reach",
        )
    else:
        yield ok("user", f"{_user()} (uid {os.geteuid()})")


def closed_to_others(path: str | os.PathLike, execute: bool = False) -> str | None:
    """
    Why a user other than root and the owner could not reach ``path``
    (every directory on the way searchable, the file readable, and
    executable if ``execute``), or None. A path that only a group can reach
    is reported too, naming the group the pipe user would need.
    """
    import grp

    target = Path(os.path.realpath(path))
    for step in [*reversed(target.parents), target]:
        st = os.stat(step)
        if stat.S_ISDIR(st.st_mode):
            need = 0o1
        else:
            need = 0o5 if execute else 0o4
        if st.st_mode & need == need:
            continue  # others may
        what = f"{step} (mode {stat.S_IMODE(st.st_mode):04o}, owner {_owner(st.st_uid)})"
        if (st.st_mode >> 3) & need == need:
            try:
                group = grp.getgrgid(st.st_gid).gr_name
            except KeyError:
                group = str(st.st_gid)
            return f"only the owner and group {group} can reach {what}"
        return f"only its owner can reach {what}"
    return None


def _owner(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def check_python(pythonpath: str | None) -> Iterator[Finding]:
    import django

    import mailserver

    interpreter = os.path.realpath(sys.executable)
    version = ".".join(map(str, sys.version_info[:3]))
    where = f"{sys.executable} (Python {version}"
    if sys.prefix != sys.base_prefix:
        where += f", virtualenv {sys.prefix}, made from {interpreter}"
    where += ")"
    if not _as_root():
        # This user runs it, so this user can: nothing more to learn.
        yield ok("python", where)
        return
    needed = [
        (interpreter, True),
        (os.path.dirname(os.__file__), False),  # the standard library
        (os.path.dirname(django.__file__), False),
        (os.path.dirname(mailserver.__file__), False),
    ]
    if pythonpath:
        needed.append((pythonpath, False))
    for path, execute in needed:
        if os.path.exists(path) and (why := closed_to_others(path, execute)):
            # Root cannot know the pipe user's groups and ACLs: a warning.
            yield warn(
                "python",
                f"{where}: {why}, so the pipe user cannot use {path}. Build the virtualenv "
                "from a Python every user can run, e.g. /usr/bin/python3 -m venv /srv/mailserver/"
                "venv (one inside root's home, as pyenv's is, fails with 'execvp ... Permission "
                "denied'), and keep the project outside root's home",
            )
            return
    yield ok("python", f"{where}; users other than root can reach it")


def write_problem(path: Path) -> tuple[Callable[[str, str], Finding], str] | None:
    """
    Why the pipe user could not write ``path``, as far as this process can
    tell, and how sure that is: a failure for this user; for root, who may
    write anything, a warning when only root may.
    """
    if not os.access(path, os.W_OK):
        return fail, f"{_user()} cannot write {path}"
    if _as_root():
        st = os.stat(path)
        if st.st_uid == 0 and not st.st_mode & 0o022:
            mode = stat.S_IMODE(st.st_mode)
            return warn, f"only root can write {path} (owner root, mode {mode:04o})"
    return None


def check_log_file(log_file: str | None) -> Iterator[Finding]:
    name = "log file"
    if not log_file:
        yield ok(
            name,
            "none given (--log-file): what a view prints is discarded, and log records go "
            "where LOGGING sends them",
        )
        return
    path = Path(log_file)
    if path.is_dir():
        yield fail(name, f"{path} is a directory")
        return
    if path.exists():
        if problem := write_problem(path):
            status, why = problem
            yield status(name, f"{why}: make the pipe user its owner (chown mailpipe {path})")
        else:
            yield ok(name, f"{path} is writable")
        return
    if not path.parent.is_dir():
        yield fail(name, f"{path.parent}, where {path.name} would go, is not a directory")
    elif problem := write_problem(path.parent):
        status, why = problem
        yield status(
            name,
            f"{why}, so {path.name} cannot be created there: create it for the pipe user "
            f"(install -o mailpipe -m 640 /dev/null {path})",
        )
    else:
        yield ok(name, f"{path} does not exist yet; it will be created on the first message")


def check_settings(settings_module: str | None, pythonpath: str | None) -> Iterator[Finding]:
    import django

    from .pipe import Failure, setup_django

    try:
        setup_django(settings_module, pythonpath)
    except Failure as exc:
        text = exc.text or exc.outcome.text
        if pythonpath and not os.path.isdir(pythonpath):
            text += f" ({pythonpath} is not a directory {_user()} can enter)"
        yield fail("settings", text)
        return
    module = os.environ["DJANGO_SETTINGS_MODULE"]
    path = getattr(sys.modules.get(module), "__file__", None)
    text = f"{module} ({path}) loads; Django {django.get_version()} is set up"
    if _as_root() and path and (why := closed_to_others(path)):
        yield warn("settings", f"{text}, but {why}: the pipe user cannot read it")
        return
    yield ok("settings", text)


def check_mailconf() -> Iterator[Finding]:
    from django.core import checks

    from .conf import settings

    messages = checks.run_checks(tags=["mailserver"])
    errors = [m for m in messages if m.is_serious()]
    for message in errors or messages:
        text = f"{message.msg} ({message.id})"
        if message.hint:
            text += f" {message.hint}"
        yield (fail if errors else warn)("mailconf", text)
    if not errors:
        from .resolvers import get_resolver

        count = len(get_resolver().mailbox_patterns)
        yield ok("mailconf", f"ROOT_MAILCONF {settings.ROOT_MAILCONF} loads ({count} patterns)")


def configured_databases(databases: Mapping[str, Mapping]) -> list[str]:
    """
    The aliases of ``databases`` (``connections.settings``) that name a real
    database. Not settings.DATABASES: Django fills an empty one in place
    with its dummy backend the first time anything looks at the
    connections, which Django 6.1 does while it sets up.
    """
    return [
        alias
        for alias, config in databases.items()
        if config.get("ENGINE") != "django.db.backends.dummy"
    ]


def check_databases() -> Iterator[Finding]:
    from django.db import connections

    configured = configured_databases(connections.settings)
    if not configured:
        yield ok("database", "none configured (DATABASES is empty)")
        return
    for alias in configured:
        yield check_database(alias, connections[alias])


def check_database(alias: str, connection) -> Finding:
    """
    Reachable, migrated and, for SQLite, writable. A doubt about who may
    write the file (root cannot tell) comes with the answer, not instead.
    """
    name = f"database {alias}"
    where = connection.settings_dict.get("NAME")
    caveat = None
    if connection.vendor == "sqlite" and not connection.is_in_memory_db():
        path = Path(str(where))
        if not path.exists():
            return fail(
                name,
                f"{path} does not exist: run manage.py migrate, then let the pipe user "
                "write the file and its directory",
            )
        for target in (path, path.parent):
            if problem := write_problem(target):
                status, why = problem
                text = (
                    f"{why}: SQLite writes the database file and a journal beside it, so "
                    "the pipe user must be able to write both"
                )
                if status is fail:
                    return fail(name, text)
                caveat = text
                break
    try:
        connection.ensure_connection()
        from django.db.migrations.executor import MigrationExecutor

        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:
        return fail(name, f"cannot use {where}: {type(exc).__name__}: {exc}")
    finally:
        connection.close()
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _backwards in plan[:3])
        more = f" and {len(plan) - 3} more" if len(plan) > 3 else ""
        text = f"{where}: {len(plan)} migration(s) not applied ({names}{more})"
        text += ": run manage.py migrate"
        return fail(name, f"{text}; also, {caveat}" if caveat else text)
    text = f"{connection.vendor} {where}: reachable, migrations applied"
    return warn(name, f"{text}, but {caveat}") if caveat else ok(name, text)


def check_compiled() -> Iterator[Finding]:
    """
    Whether the modules a delivery imports have up-to-date byte code. The
    pipe user usually cannot write ``__pycache__``, and without the .pyc
    files every message pays several times the start-up.
    """
    from . import handlers  # noqa: F401 - and with it what every delivery imports

    loaded = stale = 0
    roots: dict[str, None] = {}
    for module in list(sys.modules.values()):
        source = getattr(module, "__file__", None)
        cached = getattr(module, "__cached__", None)
        if not source or not cached or not source.endswith(".py"):
            continue
        loaded += 1
        if not _fresh(source, cached):
            stale += 1
            roots[_path_root(source)] = None
    if stale:
        why = (
            "writing them is turned off (PYTHONDONTWRITEBYTECODE or -B)"
            if sys.dont_write_bytecode
            else f"{_user()} cannot write them"
        )
        yield fail(
            "compiled",
            f"{stale} of {loaded} modules have no up-to-date .pyc file and {why}, so every "
            f"message compiles them again: run {sys.executable} -m compileall -q "
            f"{' '.join(roots)}",
        )
    else:
        yield ok("compiled", f"all {loaded} modules loaded so far have up-to-date .pyc files")


def _fresh(source: str, cached: str) -> bool:
    """What the import system checks before it trusts a .pyc file (PEP 552)."""
    from importlib.util import MAGIC_NUMBER

    try:
        with open(cached, "rb") as f:
            header = f.read(16)
        st = os.stat(source)
    except OSError:
        return False
    if len(header) < 16 or header[:4] != MAGIC_NUMBER:
        return False
    flags = int.from_bytes(header[4:8], "little")
    if flags & 0b1:  # hash-based: compileall wrote it on purpose
        return True
    mtime = int.from_bytes(header[8:12], "little")
    size = int.from_bytes(header[12:16], "little")
    return mtime == int(st.st_mtime) & 0xFFFFFFFF and size == st.st_size & 0xFFFFFFFF


def _path_root(source: str) -> str:
    """The sys.path entry a module was found under: what to compile."""
    best = ""
    for entry in sys.path:
        entry = os.path.abspath(entry or os.curdir)
        if source.startswith(entry + os.sep) and len(entry) > len(best):
            best = entry
    return best or os.path.dirname(source)
