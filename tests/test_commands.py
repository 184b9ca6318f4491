import os
import subprocess
import sys
import warnings
from io import StringIO
from pathlib import Path

import pytest
from django.core import mail
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent

MESSAGE = b"From: Ann <ann@example.org>\nSubject: Printer\n\nIt is on fire.\n"

pytestmark = pytest.mark.django_db


def readmail(tmp_path, *args, message=MESSAGE):
    path = tmp_path / "message.eml"
    path.write_bytes(message)
    out, err = StringIO(), StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("readmail", str(path), *args, stdout=out, stderr=err)
    return exit_info.value.code, out.getvalue(), err.getvalue()


def test_readmail_delivers_and_exits_0(tmp_path):
    code, out, err = readmail(tmp_path, "--recipient", "onedest@bugs.example.com")
    assert code == 0 and err == ""
    assert "<onedest@bugs.example.com> tests.mailapp.mailers.reply: 250 2.0.0" in out
    assert mail.outbox[0].subject == "Re: Printer"


def test_readmail_exit_status_is_the_outcomes(tmp_path):
    code, out, err = readmail(tmp_path, "--recipient", "nobody@example.com")
    assert code == 67
    assert out.strip() == "<nobody@example.com> -: 550 5.1.1 <nobody@example.com>: no such mailbox"
    code, out, err = readmail(tmp_path, "--recipient", "broken@example.com")
    assert code == 75 and "451 4.3.0 " in out


def test_readmail_prints_each_outcome_once(tmp_path):
    code, out, err = readmail(
        tmp_path, "--recipient", "nobody@example.com", "--recipient", "onedest@bugs.example.com"
    )
    assert code == 67
    assert (out + err).count("5.1.1 <nobody@example.com>: no such mailbox") == 1
    assert (out + err).count("250 2.0.0") == 1
    # Quiet: only the line that decides the exit status, on stderr.
    code, out, err = readmail(tmp_path, "--recipient", "nobody@example.com", "--verbosity", "0")
    assert (code, out, err) == (67, "", "5.1.1 <nobody@example.com>: no such mailbox\n")


def test_readmail_recipient_from_headers(tmp_path):
    code, out, err = readmail(
        tmp_path, message=b"Delivered-To: onedest@bugs.example.com\n" + MESSAGE
    )
    assert code == 0


def test_readmail_from_standard_input(process_env):
    proc = subprocess.run(
        [sys.executable, "-m", "django", "readmail", "--recipient", "nobody@example.com"],
        input=MESSAGE,
        capture_output=True,
        env=process_env,
        cwd=ROOT,
    )
    assert proc.returncode == 67, proc.stderr
    assert proc.stdout.decode() == (
        "<nobody@example.com> -: 550 5.1.1 <nobody@example.com>: no such mailbox\n"
    )
    assert proc.stderr == b""


def test_resolvemail():
    out = StringIO()
    call_command("resolvemail", "dev-subscribe@lists.example.com", stdout=out)
    assert out.getvalue().strip() == (
        "dev-subscribe@lists.example.com -> tests.mailapp.mailers.echo_args "
        "(name 'lists:listcommands:command') args=() kwargs={'list': 'dev', 'command': 'subscribe'}"
    )
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("resolvemail", "onedest@bugs.example.com", "x@nowhere.example", stdout=out)
    assert exit_info.value.code == 1
    text = out.getvalue()
    assert "onedest@bugs.example.com -> tests.mailapp.mailers.reply" in text
    assert "x@nowhere.example: no route. Tried:" in text
    assert "'@bugs.example.com' '^onedest'" not in text  # the include did not match x@nowhere
    assert r"'^broken@example\\.com$'" in text


def test_startmailapp_creates_an_app_whose_test_passes(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = f"{tmp_path}:{ROOT}"
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", "proj", str(tmp_path)],
        check=True,
        env=env,
    )
    settings = tmp_path / "proj" / "settings.py"
    settings.write_text(
        settings.read_text().replace("INSTALLED_APPS = [", "INSTALLED_APPS = [\n    'mailserver',")
    )
    subprocess.run(
        [sys.executable, str(tmp_path / "manage.py"), "startmailapp", "helpdesk"],
        check=True,
        cwd=tmp_path,
        env=env,
    )
    app = tmp_path / "helpdesk"
    assert sorted(p.name for p in app.iterdir()) == [
        "__init__.py",
        "apps.py",
        "mailbox.py",
        "mailers.py",
        "tests.py",
    ]
    assert "class HelpdeskConfig" in (app / "apps.py").read_text()
    # Code a project starts from compiles without a warning (an invalid
    # escape in a docstring is a SyntaxWarning from Python 3.12 on, printed
    # by every process that compiles it, django-mailpipe's included).
    for module in app.glob("*.py"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            compile(module.read_text(), str(module), "exec")
    settings.write_text(
        settings.read_text().replace("INSTALLED_APPS = [", "INSTALLED_APPS = [\n    'helpdesk',")
        + "\nROOT_MAILCONF = 'helpdesk.mailbox'\n"
    )
    check = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    test = subprocess.run(
        [sys.executable, "manage.py", "test", "helpdesk", "-v", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert test.returncode == 0, test.stderr
    assert "test_echo_replies_to_the_sender" in test.stderr and "OK" in test.stderr
    assert "test_the_view_called_directly" in test.stderr
