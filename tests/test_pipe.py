"""
django-mailpipe as the MTA runs it: a real process, bytes on stdin, and
nothing but the exit status and one line of output to judge it by.
"""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

MESSAGE = b"""\
From: Ann <ann@example.org>
To: record@example.com
Subject: Printer
Message-ID: <m1@example.org>

It is on fire.
"""


def pipe(env, *args, input=MESSAGE, command=None, **kwargs):
    return subprocess.run(
        [*(command or [sys.executable, "-m", "mailserver.pipe"]), *args],
        input=input,
        capture_output=True,
        env=env,
        timeout=60,
        **kwargs,
    )


def output(proc) -> str:
    """
    What the MTA reads: stdout and stderr, which pipe(8) joins. One line, with
    no line break at its end, which Postfix would fold into a space.
    """
    return (proc.stdout + proc.stderr).decode()


def deliveries(env):
    with sqlite3.connect(env["MAILSERVER_TEST_DB"]) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT * FROM mailapp_delivery ORDER BY id").fetchall()
        db.execute("DELETE FROM mailapp_delivery")
    return [dict(row) for row in rows]


@pytest.fixture
def env(process_env):
    deliveries(process_env)
    return dict(process_env)


def test_entry_module_and_package_stay_light():
    code = (
        "import sys, mailserver, mailserver.pipe; "
        "print(sorted(m for m in ('django', 'email') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "command", [["-m", "mailserver"], [str(ROOT / "bin" / "django-mailpipe")]], ids=["-m", "bin"]
)
def test_version_is_the_package_s_and_loads_neither_django_nor_email(command):
    import mailserver

    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *command, "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    assert proc.stdout.strip().endswith(f"(django-mailserver) {mailserver.__version__}")
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    assert "click" in imported  # the list is what it seems
    assert not imported & {"django", "email", "importlib.metadata"}


def test_delivered_prints_nothing_and_exits_0(env):
    proc = pipe(
        env,
        "--sender",
        "ann@example.org",
        "--recipient",
        "record@example.com",
        "--original-recipient",
        "alias@example.com",
        "--queue-id",
        "4QX1",
        "--client-address",
        "192.0.2.1",
        "--size",
        "123",
    )
    assert (proc.returncode, output(proc)) == (0, "")
    [seen] = deliveries(env)
    assert seen["sender"] == "ann@example.org"
    assert seen["recipient"] == "record@example.com"
    assert seen["original_recipient"] == "alias@example.com"
    assert (seen["queue_id"], seen["client_address"], seen["size"]) == ("4QX1", "192.0.2.1", 123)
    assert seen["transport"] == "pipe"
    assert bytes(seen["raw"]) == MESSAGE


def test_settings_by_option_and_pythonpath(env, tmp_path):
    del env["DJANGO_SETTINGS_MODULE"]
    env["PYTHONPATH"] = ""
    proc = pipe(
        env,
        "--settings",
        "tests.settings",
        "--pythonpath",
        str(ROOT),
        "--recipient",
        "record@example.com",
        cwd=tmp_path,
    )
    assert (proc.returncode, output(proc)) == (0, "")
    assert len(deliveries(env)) == 1


def test_unknown_recipient_bounces_with_one_line(env):
    proc = pipe(env, "--sender", "a@b.c", "--recipient", "nobody+x@example.com")
    assert proc.returncode == 67
    assert output(proc) == "5.1.1 <nobody+x@example.com>: no such mailbox"


def test_null_sender_is_a_bounce_not_an_error(env):
    proc = pipe(env, "--sender", "", "--recipient", "record@example.com")
    assert proc.returncode == 0, output(proc)
    assert deliveries(env)[0]["sender"] == ""


@pytest.mark.parametrize(
    "recipient, text",
    [
        ("broken@example.com", "4.3.0 temporary failure, try again later"),
        ("none@example.com", "4.3.0 temporary failure, try again later"),
        ("defer@example.com", "4.3.0 database busy"),
        ("oom@example.com", "4.3.0 temporary failure, try again later"),
        ("exits@example.com", "4.3.0 internal error: SystemExit"),
    ],
)
def test_our_failures_defer_without_a_traceback(env, recipient, text):
    proc = pipe(env, "--recipient", recipient)
    assert (proc.returncode, output(proc)) == (75, text)


def test_nothing_a_view_prints_reaches_the_mta(env, tmp_path):
    proc = pipe(env, "--recipient", "noisy@example.com")
    assert (proc.returncode, output(proc)) == (0, "")
    log = tmp_path / "pipe.log"
    proc = pipe(env, "--recipient", "noisy@example.com", "--log-file", str(log))
    assert (proc.returncode, output(proc)) == (0, "")
    text = log.read_text()
    assert "a view that prints" in text and "and writes to stderr" in text
    assert "a log record" in text


def test_the_failure_goes_to_the_log_file(env, tmp_path):
    log = tmp_path / "pipe.log"
    proc = pipe(env, "--recipient", "broken@example.com", "--log-file", str(log))
    assert proc.returncode == 75
    assert "RuntimeError: the view is broken" in log.read_text()


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"DJANGO_SETTINGS_MODULE": ""}, "4.3.5 no Django settings"),
        ({"DJANGO_SETTINGS_MODULE": "tests.no_such_settings"}, "4.3.5 Django settings failed"),
        ({"DJANGO_SETTINGS_MODULE": "tests.broken_settings"}, "4.3.5 Django settings failed"),
    ],
)
def test_broken_settings_defer(env, change, expected):
    env.update(change)
    proc = pipe(env, "--recipient", "record@example.com")
    assert proc.returncode == 75
    assert output(proc).startswith(expected)
    assert "\n" not in output(proc)


def test_settings_not_found_points_to_pythonpath(env, tmp_path):
    """
    A console script puts its own directory on the path, not the current
    one: a project found by manage.py is not found by django-mailpipe.
    """
    (tmp_path / "mysite").mkdir()
    (tmp_path / "mysite" / "__init__.py").write_text("")
    (tmp_path / "mysite" / "settings.py").write_text("from tests.settings import *\n")
    del env["DJANGO_SETTINGS_MODULE"]
    launcher = [sys.executable, str(ROOT / "bin" / "django-mailpipe")]
    args = ["--settings", "mysite.settings", "--recipient", "record@example.com"]
    proc = pipe(env, *args, command=launcher, cwd=tmp_path)
    assert (proc.returncode, output(proc)) == (
        75,
        "4.3.5 Django settings failed to load: ModuleNotFoundError: No module named 'mysite'; "
        "pass --pythonpath with the directory that holds mysite/",
    )
    proc = pipe(env, *args, "--pythonpath", "/nonexistent", command=launcher, cwd=tmp_path)
    assert output(proc).endswith("; --pythonpath /nonexistent holds no mysite/")
    proc = pipe(env, *args, "--pythonpath", str(tmp_path), command=launcher, cwd=tmp_path)
    assert (proc.returncode, output(proc)) == (0, "")
    # The package is found, the module is not: say where the package came from.
    args = ["--settings", "mysite.setings", "--pythonpath", str(tmp_path)]
    proc = pipe(env, *args, command=launcher, cwd=tmp_path)
    assert output(proc).endswith(
        f"; mysite was imported from {tmp_path / 'mysite'}, which has no module setings"
    )


def test_broken_mailconf_defers(env, tmp_path):
    (tmp_path / "badconf_settings.py").write_text(
        "from tests.settings import *\nROOT_MAILCONF = 'badconf_mailconf'\n"
    )
    (tmp_path / "badconf_mailconf.py").write_text("raise ImportError('oops')\n")
    env["PYTHONPATH"] = f"{tmp_path}:{ROOT}"
    env["DJANGO_SETTINGS_MODULE"] = "badconf_settings"
    proc = pipe(env, "--recipient", "record@example.com")
    assert (proc.returncode, output(proc)) == (75, "4.3.0 temporary failure, try again later")


def test_database_missing_defers(env, tmp_path):
    env["MAILSERVER_TEST_DB"] = str(tmp_path / "no" / "such" / "dir.sqlite3")
    proc = pipe(env, "--recipient", "record@example.com")
    assert (proc.returncode, output(proc)) == (75, "4.3.0 temporary failure, try again later")


def test_database_locked_defers(env):
    env["MAILSERVER_TEST_DB_TIMEOUT"] = "0.2"
    holder = sqlite3.connect(env["MAILSERVER_TEST_DB"], isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        proc = pipe(env, "--recipient", "record@example.com")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (proc.returncode, output(proc)) == (75, "4.3.0 temporary failure, try again later")
    assert deliveries(env) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signals_defer(env, signum):
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailserver.pipe", "--recipient", "slow@example.com"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    proc.stdin.write(MESSAGE)
    proc.stdin.close()
    time.sleep(1.5)  # into the view's sleep
    proc.send_signal(signum)
    out = proc.stdout.read().decode()
    assert proc.wait(timeout=20) == 75
    assert out == f"4.3.0 interrupted by {signal.Signals(signum).name}; will retry"


def test_deadline_defers(env):
    started = time.monotonic()
    proc = pipe(env, "--recipient", "slow@example.com", "--deadline", "1")
    assert (proc.returncode, output(proc)) == (75, "4.3.0 gave up after 1 s; will retry")
    assert time.monotonic() - started < 20


def test_deadline_from_settings(env, tmp_path):
    (tmp_path / "deadline_settings.py").write_text(
        "from tests.settings import *\nMAIL_PIPE_DEADLINE = 0.5\n"
    )
    env["PYTHONPATH"] = f"{tmp_path}:{ROOT}"
    proc = pipe(env, "--settings", "deadline_settings", "--recipient", "slow@example.com")
    assert (proc.returncode, output(proc)) == (75, "4.3.0 gave up after 0.5 s; will retry")


def test_size_limit_while_reading(env, tmp_path):
    big = MESSAGE + b"x" * 5000 + b"\n"
    proc = pipe(env, "--recipient", "record@example.com", "--max-size", "1000", input=big)
    assert proc.returncode == 65
    assert output(proc) == f"5.3.4 message size {len(big)} exceeds the limit of 1000 bytes"
    (tmp_path / "small_settings.py").write_text(
        "from tests.settings import *\nMAIL_MAX_MESSAGE_SIZE = 100\n"
    )
    env["PYTHONPATH"] = f"{tmp_path}:{ROOT}"
    proc = pipe(env, "--settings", "small_settings", "--recipient", "record@example.com")
    assert proc.returncode == 65
    assert output(proc).startswith("5.3.4 message size ")
    assert deliveries(env) == []


def test_empty_input_is_a_malformed_message(env):
    proc = pipe(env, "--recipient", "record@example.com", input=b"")
    assert (proc.returncode, output(proc)) == (65, "5.6.0 empty message")


def test_unreadable_stdin_defers(env):
    # A TCP connection reset by its peer: reading it fails with ECONNRESET.
    import socket
    import struct

    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()
        time.sleep(0.1)
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "mailserver.pipe", "--recipient", "record@example.com"],
                stdin=client.fileno(),
                capture_output=True,
                env=env,
                timeout=60,
            )
        finally:
            client.close()
    assert proc.returncode == 75
    assert output(proc).startswith("4.3.0 cannot read the message: ")


def test_closed_stdin_defers(env):
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, runpy, sys; os.close(0); sys.argv[1:] = "
            "['--recipient', 'record@example.com']; runpy.run_module('mailserver.pipe', "
            "run_name='__main__')",
        ],
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 75
    assert output(proc).startswith("4.3.0 cannot read the message: ")


def test_usage_error_defers(env):
    proc = pipe(env, "--no-such-option")
    assert proc.returncode == 75
    assert output(proc).startswith("4.3.5 usage error: ")
    assert "--no-such-option" in output(proc) and "\n" not in output(proc)


def test_help_documents_the_exit_statuses():
    proc = subprocess.run(
        [sys.executable, "-m", "mailserver.pipe", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0
    for line in ("0  delivered", "67  bounced: no such mailbox (5.1.1)", "75  deferred"):
        assert line in proc.stdout


def test_mbox_from_line_and_crlf(env):
    raw = b"From ann@example.org Thu Nov 26 10:00:00 2026\r\n" + MESSAGE.replace(b"\n", b"\r\n")
    proc = pipe(env, "--recipient", "record@example.com", input=raw)
    assert (proc.returncode, output(proc)) == (0, "")
    [seen] = deliveries(env)
    assert bytes(seen["raw"]) == MESSAGE.replace(b"\n", b"\r\n")
    assert seen["subject"] == "Printer"


def test_exim_environment(env):
    env.update(
        SENDER="ann@example.org",
        LOCAL_PART="record",
        LOCAL_PART_SUFFIX="+tag",
        DOMAIN="example.com",
        RECIPIENT="record@example.com",
        MESSAGE_ID="1abcDE-000001-AB",
    )
    proc = pipe(env)
    assert (proc.returncode, output(proc)) == (0, "")
    [seen] = deliveries(env)
    assert seen["recipient"] == "record+tag@example.com"
    assert seen["subaddress"] == "tag"
    assert (seen["sender"], seen["queue_id"]) == ("ann@example.org", "1abcDE-000001-AB")


def test_exim_null_sender(env):
    env.update(SENDER="", LOCAL_PART="record", DOMAIN="example.com")
    proc = pipe(env)
    assert proc.returncode == 0
    assert deliveries(env)[0]["sender"] == ""


def test_options_win_over_exim_environment(env):
    env.update(SENDER="env@example.org", LOCAL_PART="nobody", DOMAIN="example.com")
    proc = pipe(env, "--sender", "opt@example.org", "--recipient", "record@example.com")
    assert proc.returncode == 0
    assert deliveries(env)[0]["sender"] == "opt@example.org"


def test_recipient_from_headers_last(env):
    proc = pipe(env, input=b"Delivered-To: record@example.com\n" + MESSAGE)
    assert proc.returncode == 0
    assert deliveries(env)[0]["recipient"] == "record@example.com"
    proc = pipe(env)
    assert (proc.returncode, output(proc)) == (
        75,
        "4.3.5 no recipient: none given (pass --recipient) nor in the headers "
        "Delivered-To, X-Original-To, Envelope-To (MAIL_RECIPIENT_HEADERS)",
    )


def test_no_recipient_names_the_headers_it_read(env, tmp_path):
    (tmp_path / "headers_settings.py").write_text(
        "from tests.settings import *\nMAIL_RECIPIENT_HEADERS = ['X-Rcpt']\n"
    )
    env["PYTHONPATH"] = f"{tmp_path}:{ROOT}"
    proc = pipe(env, "--settings", "headers_settings")
    assert (proc.returncode, output(proc)) == (
        75,
        "4.3.5 no recipient: none given (pass --recipient) nor in the headers X-Rcpt "
        "(MAIL_RECIPIENT_HEADERS)",
    )
    headed = b"X-Rcpt: record@example.com\n" + MESSAGE
    proc = pipe(env, "--settings", "headers_settings", input=headed)
    assert (proc.returncode, output(proc)) == (0, "")


def test_several_recipients(env):
    # All delivered: 0.
    proc = pipe(env, "--recipient", "record@example.com", "record+2@example.com")
    assert (proc.returncode, output(proc)) == (0, "")
    assert [d["recipient"] for d in deliveries(env)] == [
        "record@example.com",
        "record+2@example.com",
    ]
    # One unknown: the message bounces with that recipient's line, after the
    # others were delivered.
    proc = pipe(env, "--recipient", "record@example.com", "--recipient", "nobody@example.com")
    assert (proc.returncode, output(proc)) == (67, "5.1.1 <nobody@example.com>: no such mailbox")
    assert len(deliveries(env)) == 1
    # A temporary failure wins over a bounce: the MTA retries them all.
    proc = pipe(env, "--recipient", "nobody@example.com", "--recipient", "defer@example.com")
    assert (proc.returncode, output(proc)) == (75, "4.3.0 database busy")


def test_dry_run_runs_no_view(env):
    # Standard input is not even read when the recipients are given: it is
    # left open here, and reading it would hang.
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mailserver.pipe",
            "--dry-run",
            "--recipient",
            "record@example.com",
            "x@y.z",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    ) as proc:
        out = proc.stdout.read()
        proc.wait(timeout=30)
        proc.stdin.close()
    proc.stdout, proc.stderr = out, b""
    assert proc.returncode == 67
    assert output(proc).splitlines() == [
        "<record@example.com> -> record args=() kwargs={}",
        "5.1.1 <x@y.z>: no such mailbox",
    ]
    assert deliveries(env) == []
    proc = pipe(env, "--dry-run", input=b"Delivered-To: support-sales@example.com\n\nhi\n")
    assert proc.returncode == 0
    assert output(proc) == (
        "<support-sales@example.com> -> queue args=() kwargs={'queue': 'sales', 'via': 'support'}"
    )


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("django-mailpipe")
    assert script.exists()
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "Exit status" in proc.stdout


def test_checkout_launcher(env):
    proc = subprocess.run(
        [str(ROOT / "bin" / "django-mailpipe"), "--recipient", "record@example.com"],
        input=MESSAGE,
        capture_output=True,
        env=env,
    )
    assert (proc.returncode, output(proc)) == (0, "")


def test_refused_sender_bounces_with_5_7_1(env):
    proc = pipe(env, "--sender", "ann@example.org", "--recipient", "members@example.com")
    assert (proc.returncode, output(proc)) == (77, "5.7.1 <ann@example.org>: sender not allowed")


class FailingMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raise ConnectionError("cache down")


@pytest.mark.parametrize(
    "settings_text",
    [
        # A middleware that raises while handling the message.
        "MAIL_MIDDLEWARE = ['tests.test_pipe.FailingMiddleware']",
        # A middleware that cannot even be imported.
        "MAIL_MIDDLEWARE = ['tests.no_such_module.Middleware']",
        # The reply cannot be sent: nothing listens on the SMTP port.
        "globals().update(mail_settings('django.core.mail.backends.smtp.EmailBackend', "
        "host='127.0.0.1', port={closed_port}, timeout=5))",
    ],
    ids=["middleware-raises", "middleware-import", "reply-fails"],
)
def test_more_failures_on_our_side_defer(env, tmp_path, settings_text):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    (tmp_path / "failing_settings.py").write_text(
        "from tests.mail import mail_settings\nfrom tests.settings import *\n"
        + settings_text.format(closed_port=closed_port)
        + "\n"
    )
    env["PYTHONPATH"] = f"{tmp_path}:{ROOT}"
    proc = pipe(env, "--settings", "failing_settings", "--recipient", "onedest@bugs.example.com")
    assert (proc.returncode, output(proc)) == (75, "4.3.0 temporary failure, try again later")


def test_a_person_at_a_terminal_gets_a_line_break(env):
    import pty

    controller, terminal = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mailserver.pipe", "--recipient", "nobody@example.com"],
            input=MESSAGE,
            stdout=terminal,
            stderr=terminal,
            env=env,
            timeout=60,
        )
        out = os.read(controller, 1000)
    finally:
        os.close(controller)
        os.close(terminal)
    assert proc.returncode == 67
    assert out == b"5.1.1 <nobody@example.com>: no such mailbox\r\n"  # the tty's CRLF


def at_a_terminal(env, *args, input=MESSAGE):
    """Run the pipe with standard output and error on a terminal, as a person would."""
    import pty

    controller, terminal = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mailserver.pipe", *args],
            input=input,
            stdout=terminal,
            stderr=terminal,
            env=env,
            timeout=60,
        )
        os.close(terminal)
        terminal = None
        out = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: nothing is left and no one holds the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(controller)
        if terminal is not None:
            os.close(terminal)
    return proc.returncode, out.decode().replace("\r\n", "\n")


def test_a_deferral_at_a_terminal_names_the_exception(env, tmp_path):
    code, out = at_a_terminal(env, "--recipient", "broken@example.com")
    lines = out.splitlines()
    assert code == 75
    assert lines[0] == "4.3.0 temporary failure, try again later"
    mailers = ROOT / "tests" / "mailapp" / "mailers.py"
    raising = mailers.read_text().splitlines().index('    raise RuntimeError("the view is broken")')
    assert lines[1] == f"  RuntimeError: the view is broken (at {mailers}, line {raising + 1})"
    assert "--log-file FILE" in lines[2]
    log = tmp_path / "pipe.log"
    code, out = at_a_terminal(env, "--recipient", "broken@example.com", "--log-file", str(log))
    assert code == 75
    assert f"The traceback is in {log}," in out
    assert "RuntimeError: the view is broken" in log.read_text()


def test_broken_settings_at_a_terminal_say_where(env, tmp_path):
    log = tmp_path / "pipe.log"
    env["DJANGO_SETTINGS_MODULE"] = "tests.broken_settings"
    args = ["--recipient", "record@example.com", "--log-file", str(log)]
    code, out = at_a_terminal(env, *args)
    assert code == 75
    assert out.startswith("4.3.5 Django settings failed to load: RuntimeError: settings typo\n")
    settings = ROOT / "tests" / "broken_settings.py"
    raising = settings.read_text().splitlines().index('raise RuntimeError("settings typo")') + 1
    assert f"  RuntimeError: settings typo (at {settings}, line {raising})" in out
    # The MTA, which has no terminal, gets the line alone; the log the traceback.
    proc = pipe(env, *args)
    assert (proc.returncode, output(proc)) == (
        75,
        "4.3.5 Django settings failed to load: RuntimeError: settings typo",
    )
    assert f'broken_settings.py", line {raising}' in log.read_text()


def test_a_bounce_or_a_deliberate_deferral_at_a_terminal_is_the_line_alone(env):
    assert at_a_terminal(env, "--recipient", "nobody@example.com") == (
        67,
        "5.1.1 <nobody@example.com>: no such mailbox\n",
    )
    assert at_a_terminal(env, "--recipient", "defer@example.com") == (75, "4.3.0 database busy\n")
