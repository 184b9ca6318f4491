"""
Private, throw-away Postfix and Exim instances for the end-to-end tests.

Each instance is built from the files in contrib/ (so the tests exercise the
configuration we ship), with only paths, the port, the command, the settings
module and the pipe user swapped in. Nothing outside the instance's own
temporary directory is changed, except one line in /etc/exim4/trusted_configs
that lives as long as the Exim instance.

The pipe runs as an unprivileged user who cannot read /root (where a pyenv
Python and the checkout may live), so :class:`PipeRuntime` builds a virtualenv
from Debian's /usr/bin/python3 (or, for another Python version, the copy
that .ci/pipe-python.sh makes and MTA_PIPE_PYTHON names: the venv's Python
is the tests' version) in a world-readable temporary directory and
copies into it the checkout's ``mailserver`` package, its dependencies (pure
Python, taken from the interpreter running pytest: no network needed) and the
test project, then byte-compiles everything because the pipe user cannot
write ``__pycache__``. A run that needs a compiled distribution (psycopg's
binary build, for PostgreSQL) asks for it by name; it is copied only when
Debian's interpreter has the same ABI as the one running the tests.

The warm path: :class:`ServerProcess` runs ``runmailserver`` from that same
virtualenv, as the pipe user, on a unix socket in a directory that Postfix's
lmtp client (group ``postfix``) may enter; Postfix and Exim then deliver to
it with the LMTP configurations of contrib/ (``mode="lmtp"``), or through
``django-mailpipe --via`` (``mode="via"``).
"""

from __future__ import annotations

import email.policy
import functools
import grp
import importlib.metadata
import json
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CONTRIB = REPO / "contrib"

POSTFIX = shutil.which("postfix", path="/usr/sbin:/usr/bin:/sbin:/bin") or "/usr/sbin/postfix"
POSTCONF_DIR = Path(POSTFIX).parent
EXIM = os.environ.get("MTA_EXIM", "/usr/sbin/exim4")
EXIM_TRUSTED_CONFIGS = Path("/etc/exim4/trusted_configs")

TEST_DOMAIN = "mail.test"
# Served by a copy of the contrib pipe whose command does not exist: a broken
# install must keep mail queued, never bounce it.
BROKEN_DOMAIN = "broken.test"
BROKEN_COMMAND = "/nonexistent/venv/bin/django-mailpipe"
# Where test senders live. Bounces to it are swallowed (Postfix) or kept in
# a mailbox file (Exim), never sent anywhere.
SENDER_DOMAIN = "client.test"

# The example values in contrib/ that an instance replaces.
CONTRIB_COMMAND = "/srv/mailserver/venv/bin/django-mailpipe"
CONTRIB_SITE = "/srv/mailserver/site"
CONTRIB_SETTINGS = "mysite.settings"
CONTRIB_DOMAIN = "mail.example.com"
CONTRIB_USER = "mailpipe"
CONTRIB_SOCKET = "/run/mailserver/lmtp.sock"
# The group of the server's socket directory: Postfix's lmtp client runs as
# the postfix user and connects through it.
SOCKET_GROUP = "postfix"

RUN_SETTINGS_MODULE = "mta_run_settings"


class HarnessError(RuntimeError):
    pass


# --------------------------------------------------------------------------
# helpers


def pipe_user() -> str:
    """The account the pipe runs as (made by .ci/install-mtas.sh)."""
    return os.environ.get("MTA_PIPE_USER", CONTRIB_USER)


def missing_prerequisites(mta: str | None = None) -> str | None:
    """Why the MTA tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "the MTA tests run real Postfix/Exim instances and need root"
    try:
        pwd.getpwnam(pipe_user())
    except KeyError:
        return f"pipe user {pipe_user()!r} missing: run .ci/install-mtas.sh"
    if not os.access(_base_python(), os.X_OK):
        return f"{_base_python()} missing: run .ci/install-mtas.sh"
    running = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if _base_python_version() != running:
        # The pipe's venv gets this interpreter's Django and the rest: it
        # needs the same Python (Django 6 does not run on Debian 12's 3.11).
        return (
            f"{_base_python()} is Python {_base_python_version()}, the tests run on "
            f"{running}: set MTA_PIPE_PYTHON to the path "
            f"`sh .ci/pipe-python.sh {sys.executable}` prints (bin/test --install-mtas does)"
        )
    if mta == "postfix" and not os.access(POSTFIX, os.X_OK):
        return "postfix not installed: run .ci/install-mtas.sh"
    if mta == "exim" and not os.access(EXIM, os.X_OK):
        return f"{EXIM} not installed: run .ci/install-mtas.sh"
    if mta == "server":
        try:
            importlib.metadata.distribution("aiosmtpd")
        except importlib.metadata.PackageNotFoundError:
            return "aiosmtpd missing: pip install -e '.[test]' (runmailserver needs it)"
        try:
            grp.getgrnam(SOCKET_GROUP)
        except KeyError:
            return f"group {SOCKET_GROUP!r} missing: run .ci/install-mtas.sh"
    return None


def _base_python() -> str:
    """The interpreter the pipe's venv is made from: one the pipe user can run."""
    return os.environ.get("MTA_PIPE_PYTHON", "/usr/bin/python3")


@functools.cache
def _base_python_version() -> str:
    return subprocess.run(
        [_base_python(), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_world_readable(path: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(path):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                mode = os.stat(p).st_mode
                os.chmod(p, 0o755 if mode & 0o100 else 0o644)


def render_contrib(paths: list[Path], replacements: dict[str, str]) -> dict[str, str]:
    """
    The contrib files with the example values replaced. Every example value
    must occur in at least one file, so a change in contrib/ that the
    harness does not know about fails loudly instead of being tested wrongly.
    """
    texts = {p.name: p.read_text() for p in paths}
    for old, new in replacements.items():
        if not any(old in t for t in texts.values()):
            raise HarnessError(f"{old!r} not found in {[str(p) for p in paths]}")
        texts = {k: t.replace(old, new) for k, t in texts.items()}
    return texts


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise HarnessError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def make_message(
    subject: str = "test",
    body: str = "Hello.\n",
    sender: str = f"alice@{SENDER_DOMAIN}",
    to: str = f"ok@{TEST_DOMAIN}",
    size: int | None = None,
) -> EmailMessage:
    """A small message with a unique Message-ID; `size` pads the body."""
    msg = EmailMessage()
    msg["From"] = sender or f"MAILER-DAEMON@{SENDER_DOMAIN}"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@{SENDER_DOMAIN}>"
    if size:
        line = "x" * 76 + "\n"
        body = body + line * (size // len(line) + 1)
    msg.set_content(body)
    return msg


def bare_message_id(value: str | None) -> str:
    return (value or "").strip().strip("<>")


# --------------------------------------------------------------------------
# the pipe's Python side


@dataclass
class PipeRuntime:
    """
    A virtualenv the pipe user can run, holding the app and a test project:
    ``project`` names a package of tests/mta/ (mtaproject by default), and
    ``requirements`` adds distributions the project needs beyond the app's.
    """

    root: Path
    user: str
    project: str = "mtaproject"
    requirements: list[str] = field(default_factory=list)
    python: Path = field(init=False)
    site: Path = field(init=False)
    command: str = field(init=False)
    records: Path = field(init=False)
    settings_module: str = RUN_SETTINGS_MODULE
    build_seconds: float = 0.0
    has_server: bool = False

    def __post_init__(self):
        self.venv = self.root / "venv"
        self.python = self.venv / "bin" / "python"
        self.site = self.root / "site"
        self.records = self.root / "records"
        self.command = os.environ.get("MTA_PIPE_COMMAND") or str(
            self.venv / "bin" / "django-mailpipe"
        )

    def build(self, settings: dict | None = None) -> PipeRuntime:
        started = time.monotonic()
        subprocess.run(
            [_base_python(), "-m", "venv", "--without-pip", str(self.venv)],
            check=True,
        )
        purelib = Path(
            subprocess.run(
                [str(self.python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
        for dist in _dependency_closure(_project_requirements()):
            _copy_distribution(dist, purelib)
        # runmailserver's extra (aiosmtpd), when the interpreter running the
        # tests has it; without it only the pipe tests can run.
        try:
            server_dists = _dependency_closure(_project_requirements("server"))
        except HarnessError:
            server_dists = []
        for dist in server_dists:
            _copy_distribution(dist, purelib)
        self.has_server = bool(server_dists)
        # request.authentication's parser (pure Python, from the trust
        # extra), for the milter tests; lxml and the rest of the extra stay out.
        requirements = [*self.requirements, "authres", "publicsuffix2"]
        for dist in _dependency_closure(requirements):
            _copy_distribution(dist, purelib, compiled_ok=self._same_abi())
        # The code under test, straight from the checkout.
        shutil.copytree(
            REPO / "mailserver",
            purelib / "mailserver",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        self._write_console_scripts()
        # The test project goes on --pythonpath, as a deployment's would.
        self.site.mkdir()
        shutil.copytree(
            HERE / self.project,
            self.site / self.project,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        self.write_settings(settings or {})
        make_world_readable(self.root)
        # The pipe user cannot write __pycache__; without .pyc files every
        # delivery is several times slower.
        subprocess.run(
            [str(self.python), "-m", "compileall", "-q", "-j0", str(purelib), str(self.site)],
            check=True,
        )
        make_world_readable(self.root)
        self.records.mkdir()
        pw = pwd.getpwnam(self.user)
        os.chown(self.records, pw.pw_uid, pw.pw_gid)
        self.check()
        self.build_seconds = time.monotonic() - started
        return self

    def _same_abi(self) -> bool:
        """Whether compiled extensions built for the running interpreter load in the venv's."""
        theirs = subprocess.run(
            [str(self.python), "-c", "import sysconfig; print(sysconfig.get_config_var('SOABI'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return theirs == sysconfig.get_config_var("SOABI")

    def check(self) -> None:
        """Fail early, and clearly, if the pipe user cannot run the pipe."""
        probe = (
            f"import sys; sys.path.insert(0, {str(self.site)!r}); "
            f"import django, mailserver.pipe, {self.settings_module}"
        )
        try:
            result = self.run_as_user(
                [str(self.python), "-c", probe], capture_output=True, text=True
            )
            error = result.stderr if result.returncode else None
        except OSError as exc:
            error = str(exc)
        if error:
            raise HarnessError(
                f"user {self.user} cannot run the pipe's Python in {self.root} "
                f"(is every parent directory world-searchable?):\n{error}"
            )

    def _write_console_scripts(self) -> None:
        """bin/<name> for each [project.scripts] entry, the way pip writes them."""
        for name, target in _project_scripts().items():
            module, _, func = target.partition(":")
            script = self.venv / "bin" / name
            script.write_text(
                f"#!{self.python}\n"
                "import sys\n"
                f"from {module} import {func}\n"
                "if __name__ == '__main__':\n"
                f"    sys.exit({func}())\n"
            )
            script.chmod(0o755)

    def write_settings(self, overrides: dict) -> None:
        lines = [
            "# Written by tests/mta/harness.py for one test run.",
            f"from {self.project}.settings import *  # noqa: F403",
            f"MTA_RECORD_DIR = {str(self.records)!r}",
        ]
        lines += [f"{k} = {v!r}" for k, v in overrides.items()]
        (self.site / f"{self.settings_module}.py").write_text("\n".join(lines) + "\n")

    def run_as_user(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        """Run a command as the pipe user, with an empty environment like an MTA's."""
        pw = pwd.getpwnam(self.user)
        return subprocess.run(
            args,
            user=pw.pw_uid,
            group=pw.pw_gid,
            extra_groups=[],
            env={"PATH": "/usr/bin:/bin"},
            cwd="/",
            **kwargs,
        )

    def recorded(self, view: str) -> list[dict]:
        """Everything one view of the test project recorded, oldest first."""
        path = self.records / f"{view}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def manage(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        """A management command of the project, run as the pipe user."""
        return self.run_as_user(
            [
                str(self.python),
                "-m",
                "django",
                *args,
                f"--pythonpath={self.site}",
                f"--settings={self.settings_module}",
            ],
            **kwargs,
        )

    def seen(self, message_id: str) -> list[dict]:
        """What the test project's views recorded for one message."""
        want = bare_message_id(message_id)
        found = []
        for path in sorted(self.records.glob("*.jsonl")):
            for line in path.read_text().splitlines():
                record = json.loads(line)
                if bare_message_id(record.get("message_id")) == want:
                    found.append(record)
        return found


def _project_requirements(extra: str | None = None) -> list[str]:
    """The project's dependencies, or those of one of its extras."""
    text = (REPO / "pyproject.toml").read_text()
    try:
        import tomllib

        project = tomllib.loads(text)["project"]
        if extra:
            return list(project.get("optional-dependencies", {}).get(extra, []))
        return list(project["dependencies"])
    except ImportError:  # Python 3.10
        name = re.escape(extra) if extra else "dependencies"
        block = re.search(rf"^{name}\s*=\s*\[(.*?)\]", text, re.S | re.M)
        return re.findall(r"\"([^\"]+)\"", block.group(1)) if block else []


def _project_scripts() -> dict[str, str]:
    text = (REPO / "pyproject.toml").read_text()
    try:
        import tomllib

        return dict(tomllib.loads(text)["project"].get("scripts", {}))
    except ImportError:  # Python 3.10
        block = re.search(r"^\[project\.scripts\](.*?)(^\[|\Z)", text, re.S | re.M)
        return dict(re.findall(r"^([\w.-]+)\s*=\s*\"([^\"]+)\"", block.group(1), re.M))


def _requirement_applies(req: str) -> bool:
    if ";" not in req:
        return True
    try:
        from packaging.requirements import Requirement
    except ImportError:
        try:
            from pip._vendor.packaging.requirements import Requirement
        except ImportError:
            Requirement = None
    if Requirement is not None:
        marker = Requirement(req).marker
        return marker is None or marker.evaluate({"extra": ""})
    marker = req.split(";", 1)[1]
    return not re.search(r"extra|win32|Windows", marker)


def _dependency_closure(requirements: list[str]) -> list[importlib.metadata.Distribution]:
    seen: dict[str, importlib.metadata.Distribution] = {}
    todo = list(requirements)
    while todo:
        req = todo.pop()
        if not _requirement_applies(req):
            continue
        name = re.match(r"[A-Za-z0-9._-]+", req).group(0)
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError as exc:
            raise HarnessError(
                f"{name} is needed by the pipe but not installed for {sys.executable}"
            ) from exc
        seen[key] = dist
        todo.extend(dist.requires or [])
    return list(seen.values())


def _copy_distribution(
    dist: importlib.metadata.Distribution, purelib: Path, compiled_ok: bool = False
) -> None:
    """
    Copy one installed distribution's files that live in site-packages. A
    compiled one only with ``compiled_ok`` (the two interpreters share an ABI).
    """
    base = Path(dist.locate_file("")).resolve()
    for f in dist.files or []:
        src = Path(dist.locate_file(f)).resolve()
        try:
            rel = src.relative_to(base)
        except ValueError:
            continue
        if rel.parts and rel.parts[0] == "..":
            continue  # console scripts in bin/ and the like
        if src.suffix in (".so", ".pyd") and not compiled_ok:
            raise HarnessError(
                f"{dist.metadata['Name']} is not pure Python ({src}): the pipe's venv takes "
                f"it only when {_base_python()} has the ABI of {sys.executable}"
            )
        if not src.is_file():
            continue
        dst = purelib / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)


# --------------------------------------------------------------------------
# the warm path: runmailserver


class ServerProcess:
    """
    ``python -m django runmailserver --bind unix:...`` from the runtime's
    virtualenv, run as the pipe user (the account the views run as), as a
    deployment would run it next to the MTA.

    The socket lives in a directory owned by that user and the ``postfix``
    group, mode 2750: the set-group-id bit gives the socket the directory's
    group, so the server's default ``--socket-mode`` (660) lets Postfix's
    lmtp client in, the relay and Exim's lmtp transport (both run as the
    pipe user) connect as the owner, and nobody else can reach it.
    """

    def __init__(self, root: Path, runtime: PipeRuntime):
        self.root = root
        self.runtime = runtime
        self.socket = root / "lmtp.sock"
        self.log_path = root / "server.log"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def command(self) -> list[str]:
        return [
            str(self.runtime.python),
            "-m",
            "django",
            "runmailserver",
            f"--pythonpath={self.runtime.site}",
            f"--settings={self.runtime.settings_module}",
            f"--bind=unix:{self.socket}",
        ]

    def start(self, timeout: float = 30) -> ServerProcess:
        if not self.runtime.has_server:
            raise HarnessError("the pipe runtime has no aiosmtpd: runmailserver cannot run")
        pw = pwd.getpwnam(self.runtime.user)
        if not self.root.exists():
            self.root.mkdir()
            os.chown(self.root, pw.pw_uid, grp.getgrnam(SOCKET_GROUP).gr_gid)
            self.root.chmod(0o2750)
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts + 1}: {' '.join(self.command())}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command(),
                user=pw.pw_uid,
                group=pw.pw_gid,
                extra_groups=[],
                env={"PATH": "/usr/bin:/bin"},
                cwd="/",
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        try:
            wait_for(self._answers, timeout, f"runmailserver on {self.socket}", interval=0.1)
        except HarnessError as exc:
            self.kill()
            raise HarnessError(f"{exc}\n{self.log()[-3000:]}") from None
        return self

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise HarnessError(
                f"runmailserver exited with {self.process.returncode}:\n{self.log()[-3000:]}"
            )
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(5)
                sock.connect(str(self.socket))
                return sock.recv(512).startswith(b"220 ")
        except OSError:
            return False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self) -> None:
        """SIGTERM: the server drains and exits; see wait()."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 30) -> int:
        return self.process.wait(timeout)

    def stop(self, timeout: float = 30) -> int | None:
        if not self.running:
            return None if self.process is None else self.process.returncode
        self.terminate()
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise HarnessError(f"runmailserver did not drain in {timeout}s") from None

    def kill(self) -> None:
        if self.running:
            self.process.kill()
            self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_lines(self, queue_id: str) -> list[str]:
        """The server's one line per recipient for one queue id."""
        return [line for line in self.log().splitlines() if f"queue_id={queue_id} " in line]


# --------------------------------------------------------------------------
# outcomes


@dataclass
class Delivery:
    """The MTA's own final word on one recipient."""

    recipient: str
    state: str  # "delivered", "deferred" or "bounced"
    dsn: str | None  # enhanced status code, when the MTA has one
    text: str  # the MTA's explanation, pipe output included where logged
    lines: list[str] = field(default_factory=list)


@dataclass
class Submission:
    queue_id: str
    message_id: str
    recipients: list[str]
    exit_status: int | None = None  # of the injecting command, where there is one


# --------------------------------------------------------------------------
# Postfix

POSTFIX_BASE_MAIN = """\
# Private test instance, written by tests/mta/harness.py.
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
maillog_file = {maillog}
maillog_file_prefixes = {root}
syslog_name = postfix-mta-test
myhostname = mta-test.localdomain
mydomain = localdomain
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = {mynetworks}
biff = no
append_dot_mydomain = no
delay_warning_time = 0
# Nothing leaves this machine: only transport_maps entries deliver.
default_transport = error:the test instance sends no mail out
relay_transport = error:the test instance relays no mail
smtpd_banner = $myhostname ESMTP test
"""

POSTFIX_BASE_MASTER = """\
# Private test instance, written by tests/mta/harness.py. No chroot.
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

_POSTFIX_RESULT = re.compile(
    r" (?P<qid>[0-9A-Za-z]+): to=<(?P<to>[^>]*)>,(?: orig_to=<(?P<orig>[^>]*)>,)?"
    r" relay=(?P<relay>[^,]*),.* dsn=(?P<dsn>[0-9.]+), status=(?P<status>\w+) \((?P<text>.*)\)$"
)
_POSTFIX_STATES = {"sent": "delivered", "deferred": "deferred", "bounced": "bounced"}


# What each mode builds from contrib/postfix/: (main.cf, master.cf, transport).
POSTFIX_MODES = {
    # django-mailpipe run by pipe(8), Django set up per message
    "pipe": ("main.cf", "master.cf", "transport"),
    # the lmtp(8) client delivering to runmailserver
    "lmtp": ("lmtp/main.cf", "lmtp/master.cf", "lmtp/transport"),
    # pipe(8) running django-mailpipe --via, which hands over to runmailserver
    "via": ("main.cf", "via/master.cf", "transport"),
}
# Clients that are "outside" for the test instances of the lmtp mode, whose
# mynetworks is 127.0.0.1 alone: the smtpd restrictions of contrib apply to
# them (see Postfix.rcpt_replies).
OUTSIDE_ADDRESS = "127.0.0.2"


class _MTA:
    """What both MTAs share: a mode (pipe, lmtp, via) and, past the pipe, a server."""

    name = ""
    modes: dict = {}

    def __init__(
        self,
        root: Path,
        runtime: PipeRuntime,
        mode: str = "pipe",
        server: ServerProcess | None = None,
    ):
        label = self.name.capitalize()
        if mode not in self.modes:
            raise HarnessError(f"unknown {label} mode {mode!r}")
        if mode != "pipe" and server is None:
            raise HarnessError(f"{label} mode {mode!r} needs a ServerProcess")
        self.mode = mode
        self.server = server
        self.root = root
        self.runtime = runtime


class Postfix(_MTA):
    """
    A private Postfix. ``main_cf`` holds parameters set after contrib's, for
    this instance only (the fault-injection run shortens the retry times).
    """

    name = "postfix"
    modes = POSTFIX_MODES

    def __init__(self, *args, main_cf: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.main_cf = dict(main_cf or {})
        root = self.root
        self.config_dir = root / "etc"
        self.queue_dir = root / "spool"
        self.data_dir = root / "data"
        self.maillog = root / "maillog"
        self.port = free_port()
        self.started = False

    def _postfix(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [POSTFIX, "-c", str(self.config_dir), *args],
            capture_output=True,
            text=True,
            check=check,
        )

    def configure(self) -> None:
        for d in (self.config_dir, self.queue_dir, self.data_dir):
            d.mkdir(parents=True)
            d.chmod(0o755)
        pw = pwd.getpwnam("postfix")
        os.chown(self.data_dir, pw.pw_uid, pw.pw_gid)
        self.data_dir.chmod(0o700)
        names = POSTFIX_MODES[self.mode]
        replacements = {"/etc/postfix/": f"{self.config_dir}/", CONTRIB_DOMAIN: TEST_DOMAIN}
        if self.mode in ("pipe", "via"):
            replacements[CONTRIB_COMMAND] = self.runtime.command
            replacements[f"user={CONTRIB_USER}"] = f"user={self.runtime.user}"
        if self.mode == "pipe":
            replacements[CONTRIB_SITE] = str(self.runtime.site)
            replacements[CONTRIB_SETTINGS] = self.runtime.settings_module
        else:
            replacements[CONTRIB_SOCKET] = str(self.server.socket)
        rendered = render_contrib([CONTRIB / "postfix" / n for n in names], replacements)
        contrib = {
            key: rendered[Path(name).name]
            for key, name in zip(POSTFIX_MODES["pipe"], names, strict=True)
        }
        fmt = {
            "root": self.root,
            "queue": self.queue_dir,
            "data": self.data_dir,
            "maillog": self.maillog,
            "port": self.port,
            "mynetworks": "127.0.0.1/32" if self.mode == "lmtp" else "127.0.0.0/8",
        }
        if self.mode != "pipe":
            self._write_config(fmt, contrib)
            return
        main_cf = contrib["main.cf"]
        relay = f"relay_domains = {TEST_DOMAIN}"
        if relay not in main_cf:
            raise HarnessError(f"{relay!r} not in contrib/postfix/main.cf as rendered")
        main_cf = main_cf.replace(relay, f"{relay} {BROKEN_DOMAIN}")
        broken = re.sub(r"(?m)^django(?=\s)", "djangobroken", contrib["master.cf"])
        broken = broken.replace(self.runtime.command, BROKEN_COMMAND)
        (self.config_dir / "main.cf").write_text(
            POSTFIX_BASE_MAIN.format(**fmt)
            + "\n# --- contrib/postfix/main.cf (test: plus the broken domain)\n"
            + main_cf
            + "\n# test: the same service with a command that does not exist\n"
            + "djangobroken_destination_recipient_limit = 1\n"
        )
        (self.config_dir / "master.cf").write_text(
            POSTFIX_BASE_MASTER.format(**fmt)
            + "\n# --- contrib/postfix/master.cf\n"
            + contrib["master.cf"]
            + "\n# test: the same service with a command that does not exist\n"
            + broken
        )
        (self.config_dir / "transport").write_text(
            contrib["transport"]
            + "\n# test senders: bounces to them are dropped\n"
            + f"{SENDER_DOMAIN} discard:\n"
            + f"{BROKEN_DOMAIN} djangobroken:\n"
        )
        self._postmap()

    def _write_config(self, fmt: dict, contrib: dict[str, str]) -> None:
        """The lmtp and via modes: contrib's files as they are, nothing added."""
        where = f"contrib/postfix ({self.mode} mode)"
        (self.config_dir / "main.cf").write_text(
            POSTFIX_BASE_MAIN.format(**fmt) + f"\n# --- {where}\n" + contrib["main.cf"]
        )
        (self.config_dir / "master.cf").write_text(
            POSTFIX_BASE_MASTER.format(**fmt) + f"\n# --- {where}\n" + contrib["master.cf"]
        )
        (self.config_dir / "transport").write_text(
            contrib["transport"]
            + "\n# test senders: bounces to them are dropped\n"
            + f"{SENDER_DOMAIN} discard:\n"
        )
        self._postmap()

    def _postmap(self) -> None:
        subprocess.run(
            [
                str(POSTCONF_DIR / "postmap"),
                "-c",
                str(self.config_dir),
                f"hash:{self.config_dir}/transport",
            ],
            check=True,
        )

    def start(self) -> None:
        self.configure()
        if self.main_cf:
            with (self.config_dir / "main.cf").open("a") as f:
                f.write("\n# test: this instance only\n")
                f.writelines(f"{k} = {v}\n" for k, v in self.main_cf.items())
        result = self._postfix("start", check=False)
        if result.returncode != 0:
            raise HarnessError(
                f"postfix start failed ({result.returncode}): {result.stdout}{result.stderr}\n"
                + self.log()
            )
        self.started = True

        def listening():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            except OSError:
                return False

        try:
            wait_for(listening, 20, f"postfix smtpd on port {self.port}")
        except HarnessError as exc:
            raise HarnessError(f"{exc}\n{self.log()}") from None

    def stop(self) -> None:
        if self.started:
            self._postfix("stop", check=False)
            # master waits for its children; make sure it is gone.
            pidfile = self.queue_dir / "pid" / "master.pid"
            wait_for(lambda: not _pid_alive(pidfile), 20, "postfix master to exit")
            self.started = False

    def log(self) -> str:
        return self.maillog.read_text(errors="replace") if self.maillog.exists() else ""

    def send(self, msg: EmailMessage, sender: str, recipients: list[str]) -> Submission:
        data = msg.as_bytes(policy=email.policy.SMTP)
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as smtp:
            smtp.ehlo(SENDER_DOMAIN)
            code, resp = smtp.mail(sender)
            if code != 250:
                raise HarnessError(f"MAIL FROM:<{sender}> refused: {code} {resp!r}")
            for rcpt in recipients:
                code, resp = smtp.rcpt(rcpt)
                if code != 250:
                    raise HarnessError(f"RCPT TO:<{rcpt}> refused: {code} {resp!r}")
            code, resp = smtp.data(data)
        match = re.search(rb"queued as ([0-9A-Za-z]+)", resp)
        if code != 250 or not match:
            raise HarnessError(f"DATA refused: {code} {resp!r}")
        return Submission(match.group(1).decode(), msg["Message-ID"], list(recipients))

    def rcpt_replies(
        self, sender: str, recipients: list[str], source: str = OUTSIDE_ADDRESS
    ) -> dict[str, tuple[int, str]]:
        """
        What smtpd answers to each RCPT from a client at `source` (outside
        mynetworks in the lmtp mode); nothing is sent, the transaction is reset.
        """
        replies = {}
        with smtplib.SMTP("127.0.0.1", self.port, timeout=60, source_address=(source, 0)) as smtp:
            smtp.ehlo(SENDER_DOMAIN)
            code, resp = smtp.mail(sender)
            if code != 250:
                raise HarnessError(f"MAIL FROM:<{sender}> refused: {code} {resp!r}")
            for rcpt in recipients:
                code, resp = smtp.rcpt(rcpt)
                replies[rcpt] = (code, resp.decode(errors="replace"))
            smtp.rset()
        return replies

    def retry(self, sub: Submission) -> None:
        """Deliver the deferred mail now; Postfix retries the whole queue."""
        self.flush()

    def flush(self) -> None:
        """Retry every deferred message now (postqueue -f also wakes dead destinations)."""
        subprocess.run(
            [str(POSTCONF_DIR / "postqueue"), "-c", str(self.config_dir), "-f"],
            capture_output=True,
            check=True,
        )

    def results(self, sub: Submission, latest: bool = False) -> dict[str, Delivery]:
        """
        Final states logged so far, per recipient: the first one, or with
        `latest` the last one (a deferred recipient delivered on a retry).
        """
        found: dict[str, Delivery] = {}
        for line in self.log().splitlines():
            m = _POSTFIX_RESULT.search(line)
            if not m or m.group("qid") != sub.queue_id:
                continue
            rcpt = m.group("orig") or m.group("to")
            if rcpt in found and not latest:
                found[rcpt].lines.append(line)
                continue
            found[rcpt] = Delivery(
                recipient=rcpt,
                state=_POSTFIX_STATES.get(m.group("status"), m.group("status")),
                dsn=m.group("dsn"),
                text=m.group("text"),
                lines=[line],
            )
        return found

    def wait(self, sub: Submission, timeout: float = 60) -> dict[str, Delivery]:
        try:
            return wait_for(
                lambda: (r := self.results(sub)) and set(sub.recipients) <= set(r) and r,
                timeout,
                f"postfix to finish {sub.queue_id}",
            )
        except HarnessError as exc:
            raise HarnessError(f"{exc}\n{self.log_for(sub)}") from None

    def log_for(self, sub: Submission) -> str:
        return "\n".join(line for line in self.log().splitlines() if f" {sub.queue_id}: " in line)

    def queue(self) -> list[dict]:
        """What is still queued, one entry per message (postqueue -j)."""
        result = subprocess.run(
            [str(POSTCONF_DIR / "postqueue"), "-c", str(self.config_dir), "-j"],
            capture_output=True,
            text=True,
            check=True,
        )
        return [json.loads(line) for line in result.stdout.splitlines() if line]

    def queued(self, sub: Submission) -> bool:
        """
        Whether the message is still in the queue. One whose recipients all
        reached a final state leaves it a moment after that is logged (the
        queue manager logs "removed" when the file is gone): wait for that
        rather than race it.
        """
        results = self.results(sub)
        if set(sub.recipients) <= set(results) and all(
            d.state != "deferred" for d in results.values()
        ):
            try:
                wait_for(
                    lambda: f" {sub.queue_id}: removed" in self.log(),
                    30,
                    f"postfix to remove {sub.queue_id}",
                )
            except HarnessError:
                pass  # then the queue below says what is left
        return any(entry["queue_id"] == sub.queue_id for entry in self.queue())


class MaillogTail:
    """
    The final states Postfix logs, per recipient, read from where the last
    read stopped: a long run's log is not read whole each time.
    """

    _FINAL = re.compile(r" ([0-9A-Za-z]+): to=<[^>]*>,.* status=(\w+) \((.*)\)$")

    def __init__(self, path: Path):
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0
        self.partial = b""

    def read(self) -> list[tuple[str, str]]:
        """(queue id, status) for each final state logged since the last read."""
        return [(qid, status) for qid, status, _text in self.read_texts()]

    def read_texts(self) -> list[tuple[str, str, str]]:
        """As read(), with Postfix's explanation."""
        if not self.path.exists():
            return []
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        found = []
        for line in lines:
            m = self._FINAL.search(line.decode(errors="replace"))
            if m:
                found.append(m.groups())
        return found


def _pid_alive(pidfile: Path) -> bool:
    try:
        pid = int(pidfile.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


# --------------------------------------------------------------------------
# Exim

EXIM_BASE_MAIN = """\
# Private test instance, written by tests/mta/harness.py.
primary_hostname = mta-test.localdomain
qualify_domain = {sender_domain}
spool_directory = {spool}
log_file_path = {logdir}/%slog
keep_environment =
never_users = root
log_selector = +received_recipients
"""

EXIM_TEST_ROUTER = """\
# test senders: bounces to them are kept in a mailbox file
mta_test_senders:
  driver = accept
  domains = {sender_domain}
  transport = mta_test_bounces

"""

EXIM_BROKEN_ROUTER = """\
# test: the contrib transport with a command that does not exist
mta_test_broken:
  driver = accept
  domains = {broken_domain}
  transport = django_broken

"""

EXIM_TEST_TRANSPORT = """\

mta_test_bounces:
  driver = appendfile
  file = {bounces}
  user = {user}
"""

EXIM_TEST_RETRY = """\
begin retry
*   *   F,1h,10m
"""

_EXIM_LINE = re.compile(
    r"^\S+ \S+ (?:\[\d+\] )?(?P<id>[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}) (?P<rest>.*)$"
)
_EXIM_STATES = {"=>": "delivered", "->": "delivered", "**": "bounced", "==": "deferred"}


# What each mode builds from contrib/exim/: (main.conf, router.conf, transport.conf).
EXIM_MODES = {
    "pipe": ("main.conf", "router.conf", "transport.conf"),
    "lmtp": ("main.conf", "lmtp/router.conf", "lmtp/transport.conf"),
    "via": ("main.conf", "router.conf", "via/transport.conf"),
}


class Exim(_MTA):
    name = "exim"
    modes = EXIM_MODES

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        root, runtime = self.root, self.runtime
        self.config = root / "exim.conf"
        self.spool = root / "spool"
        self.logdir = root / "log"
        self.bounces = runtime.records / "exim-bounces.mbox"
        self.trusted = False

    def configure(self) -> None:
        pw = pwd.getpwnam("Debian-exim")
        for d in (self.spool, self.logdir):
            d.mkdir(parents=True)
            os.chown(d, pw.pw_uid, pw.pw_gid)
            d.chmod(0o750)
        names = EXIM_MODES[self.mode]
        replacements = {
            CONTRIB_DOMAIN: TEST_DOMAIN,
            f"user = {CONTRIB_USER}": f"user = {self.runtime.user}",
        }
        if self.mode in ("pipe", "via"):
            replacements[CONTRIB_COMMAND] = self.runtime.command
        if self.mode == "pipe":
            replacements[CONTRIB_SITE] = str(self.runtime.site)
            replacements[CONTRIB_SETTINGS] = self.runtime.settings_module
        else:
            replacements[CONTRIB_SOCKET] = str(self.server.socket)
        rendered = render_contrib([CONTRIB / "exim" / n for n in names], replacements)
        contrib = {
            key: rendered[Path(name).name]
            for key, name in zip(EXIM_MODES["pipe"], names, strict=True)
        }
        fmt = {
            "sender_domain": SENDER_DOMAIN,
            "spool": self.spool,
            "logdir": self.logdir,
            "bounces": self.bounces,
            "user": self.runtime.user,
            "broken_domain": BROKEN_DOMAIN,
        }
        if self.mode == "pipe":
            broken = re.sub(r"(?m)^django_mailpipe:", "django_broken:", contrib["transport.conf"])
            broken = broken.replace(self.runtime.command, BROKEN_COMMAND)
            test_router = EXIM_TEST_ROUTER.format(**fmt) + EXIM_BROKEN_ROUTER.format(**fmt)
            broken = "\n# test: the same transport with a command that does not exist\n" + broken
        else:
            test_router = EXIM_TEST_ROUTER.format(**fmt)
            broken = ""
        text = (
            EXIM_BASE_MAIN.format(**fmt)
            + f"\n# --- contrib/exim/{names[0]}\n"
            + contrib["main.conf"]
            + "\nbegin routers\n\n"
            + test_router
            + f"# --- contrib/exim/{names[1]}\n"
            + contrib["router.conf"]
            + f"\nbegin transports\n\n# --- contrib/exim/{names[2]}\n"
            + contrib["transport.conf"]
            + broken
            + EXIM_TEST_TRANSPORT.format(**fmt)
            + "\n"
            + EXIM_TEST_RETRY
        )
        self.config.write_text(text)
        os.chown(self.config, 0, 0)
        self.config.chmod(0o644)

    def start(self) -> None:
        self.configure()
        # `-C file` keeps root (needed for the pipe's setuid) only for files
        # listed in TRUSTED_CONFIG_LIST.
        lines = EXIM_TRUSTED_CONFIGS.read_text().splitlines()
        if str(self.config) not in lines:
            with EXIM_TRUSTED_CONFIGS.open("a") as f:
                f.write(f"{self.config}\n")
        self.trusted = True
        check = subprocess.run(
            [EXIM, "-C", str(self.config), "-bV"], capture_output=True, text=True
        )
        if check.returncode != 0:
            raise HarnessError(f"exim rejects its config:\n{check.stdout}{check.stderr}")

    def stop(self) -> None:
        if self.trusted:
            lines = EXIM_TRUSTED_CONFIGS.read_text().splitlines(keepends=True)
            keep = [line for line in lines if line.strip() != str(self.config)]
            EXIM_TRUSTED_CONFIGS.write_text("".join(keep))
            self.trusted = False

    def log(self) -> str:
        path = self.logdir / "mainlog"
        return path.read_text(errors="replace") if path.exists() else ""

    def send(self, msg: EmailMessage, sender: str, recipients: list[str]) -> Submission:
        """Inject as a local submission and deliver at once (-odi)."""
        result = subprocess.run(
            [EXIM, "-C", str(self.config), "-odi", "-oi", "-f", sender or "<>", "--", *recipients],
            input=msg.as_bytes(),
            capture_output=True,
            timeout=120,
        )
        want = bare_message_id(msg["Message-ID"])
        exim_id = None
        for line in self.log().splitlines():
            m = _EXIM_LINE.match(line)
            if m and m.group("rest").startswith("<= ") and f" id={want}" in m.group("rest"):
                exim_id = m.group("id")
        if exim_id is None:
            raise HarnessError(
                f"exim did not take the message (exit {result.returncode}): "
                f"{result.stdout!r} {result.stderr!r}\n{self.log()[-3000:]}"
            )
        return Submission(exim_id, msg["Message-ID"], list(recipients), result.returncode)

    def log_for(self, sub: Submission) -> str:
        return "\n".join(
            line
            for line in self.log().splitlines()
            if (m := _EXIM_LINE.match(line)) and m.group("id") == sub.queue_id
        )

    def results(self, sub: Submission, latest: bool = False) -> dict[str, Delivery]:
        """As Postfix.results()."""
        found: dict[str, Delivery] = {}
        lines = self.log_for(sub).splitlines()
        for line in lines:
            rest = _EXIM_LINE.match(line).group("rest")
            flag, _, tail = rest.partition(" ")
            if flag not in _EXIM_STATES:
                continue
            # "=> ok <ok@dom> R=... T=...", "** a@dom R=... T=...: text",
            # "== a@dom R=... T=... defer (0): text", "** a@dom: text". An
            # address may hold spaces ('** odd name@dom <"odd name"@dom> R=').
            head = re.split(r" (?=[RT]=)|: ", tail, maxsplit=1)[0]
            m = re.fullmatch(r"(?P<first>.*?)(?: <(?P<addr>[^<>]+)>)?", head)
            rcpt = m.group("addr") or m.group("first")
            if rcpt in found and not latest:
                continue
            text = tail.split(": ", 1)[1] if ": " in tail else tail.strip()
            found[rcpt] = Delivery(
                recipient=rcpt, state=_EXIM_STATES[flag], dsn=None, text=text, lines=[line]
            )
        # log_fail_output / log_defer_output lines carry the pipe's own words.
        for delivery in found.values():
            delivery.lines = lines
        return found

    def wait(self, sub: Submission, timeout: float = 60) -> dict[str, Delivery]:
        # -odi delivers before exim exits, so this normally returns at once.
        try:
            return wait_for(
                lambda: (r := self.results(sub)) and set(sub.recipients) <= set(r) and r,
                timeout,
                f"exim to finish {sub.queue_id}",
            )
        except HarnessError as exc:
            raise HarnessError(f"{exc}\n{self.log_for(sub)}") from None

    def queued(self, sub: Submission) -> bool:
        result = subprocess.run(
            [EXIM, "-C", str(self.config), "-bpr"], capture_output=True, text=True, check=True
        )
        return sub.queue_id in result.stdout

    def retry(self, sub: Submission) -> None:
        """Deliver a queued message now, whatever its retry times say (-M)."""
        subprocess.run(
            [EXIM, "-C", str(self.config), "-M", sub.queue_id],
            capture_output=True,
            timeout=120,
        )

    def bounce_for(self, sub: Submission) -> str | None:
        """The text of the bounce Exim sent for a message, if any."""
        if not self.bounces.exists():
            return None
        text = self.bounces.read_text(errors="replace")
        for chunk in re.split(r"(?m)^From ", text):
            if bare_message_id(sub.message_id) in chunk:
                return chunk
        return None


def new_root(prefix: str) -> Path:
    # pytest's tmp_path (and often $TMPDIR) lives under a 0700 directory the
    # pipe user cannot enter, hence a directory of our own in /tmp.
    base = os.environ.get("MTA_TMPDIR", "/tmp")
    root = Path(tempfile.mkdtemp(prefix=f"django-mailserver-{prefix}-", dir=base))
    root.chmod(0o755)
    return root
