"""
The invariants every hostile input is held to, in process and through
django-mailpipe as a real process. Shared by test_corpus and test_properties.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from mailserver.status import Outcome

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus"

EXIT_CODES = {o.exit_code for o in Outcome}
# Postfix reads the first bytes of the output as an enhanced status code.
CODES_BY_EXIT = {code: {o.enhanced for o in Outcome if o.exit_code == code} for code in EXIT_CODES}
DELIVERED = {o for o in Outcome if o.is_success}

# The seconds django-mailpipe is given (--deadline), and what the test waits
# before it calls the process hung: the deadline, start-up and some slack.
DEADLINE = 20
HUNG_AFTER = DEADLINE + 40

LINE_BREAKS = ("\r", "\n")


# -- in process ---------------------------------------------------------------


def one_line(value, what: str) -> None:
    if value is None:
        return
    assert isinstance(value, str), f"{what}: {type(value).__name__}, not str"
    assert not any(ch in value for ch in LINE_BREAKS), f"{what} carries a line break: {value!r}"


def read_everything(request) -> dict:
    """
    Everything a view can read from a request, read the way a view would,
    each header-derived value checked to be one line. Any exception raised
    here is a bug in the request, not in the mail. Returns what was read.
    """
    seen = {
        "subject": request.subject,
        "from_email": request.from_email,
        "to": request.to,
        "cc": request.cc,
        "reply_to": request.reply_to,
        "message_id": request.message_id,
        "references": request.references,
        "date": request.date,
        "text": request.text,
        "html": request.html,
        "body": request.get_body(),
        "display": request.get_recipient_display(),
        "sender": request.sender,
        "recipient": request.recipient,
        "subaddress": request.subaddress,
        "is_bounce": request.is_bounce,
        "dsn": request.dsn,
        "repr": repr(request),
    }
    for key in ("subject", "from_email", "message_id", "display"):
        one_line(seen[key], key)
    for key in ("to", "cc", "reply_to", "references"):
        for value in seen[key]:
            one_line(value, key)
    for name in ("From", "Sender", "Reply-To", "To", "Cc"):
        for address in request.addresses(name):
            one_line(address.display_name, f"{name} display name")
            one_line(address.addr_spec, f"{name} address")
            one_line(str(address), f"{name} address")
    names = {key for key, _ in request.message.raw_items()}
    for name in names | {"Subject", "From", "To", "Message-ID", "Date", "X-Missing"}:
        one_line(request[name], f"request[{name!r}]")
        one_line(request.get(name, ""), f"request.get({name!r})")
        for value in request.get_all(name):
            one_line(value, f"request.get_all({name!r})")
        assert isinstance(name in request, bool)
    files = []
    for attachment in request.attachments:
        with attachment.open() as file:  # the view may have read it already
            content = file.read()
        assert len(content) == attachment.size
        files.append((attachment.name, attachment.content_type, attachment.size))
    seen["attachments"] = files
    seen["inline"] = [a.content_id for a in request.inline]
    seen["FILES"] = sorted(request.FILES)
    if seen["dsn"] is not None:
        report = seen["dsn"]
        for recipient in report.recipients:
            assert isinstance(recipient.is_permanent, bool)
            assert isinstance(recipient.is_temporary, bool)
        assert isinstance(report.is_permanent, bool) and isinstance(report.is_temporary, bool)
        if report.returned_message is not None:
            report.returned_message.get("Subject")
    return seen


def check_result(result, expect: str | None = None) -> dict | None:
    """
    The invariants of one in-process result. ``expect`` is "delivered" or the
    enhanced code of the permanent refusal wanted; None checks only that the
    outcome is the sender's to hear about (never a temporary failure: a
    hostile message deferred would come back forever). Returns what the
    request showed, for a delivered message.
    """
    outcome = result.outcome
    assert outcome in Outcome
    line = result.dsn_line()
    assert line.startswith(outcome.enhanced + " "), line
    assert "\n" not in line and "\r" not in line, line
    where = f"{outcome.name}: {line} ({result.exception!r})"
    assert not outcome.is_temporary, f"a hostile message was deferred: {where}"
    if expect == "delivered" or (expect is None and outcome in DELIVERED):
        assert outcome in DELIVERED, where
        assert result.request is not None and result.response is not None, where
        seen = getattr(result.response, "seen", None)
        assert seen is not None, f"the view did not run: {where}"
        return read_everything(result.request)
    if expect is not None:
        assert outcome.is_permanent and outcome.enhanced == expect, where
    return None


# -- through the real pipe ------------------------------------------------------


def run_pipe(
    env: dict,
    raw: bytes,
    recipients: list[str],
    sender: str | None = "ann@example.org",
    *,
    deadline: float = DEADLINE,
    timeout: float = HUNG_AFTER,
    log_file: Path | None = None,
    extra: tuple = (),
) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "mailserver.pipe", "--deadline", str(deadline)]
    if sender is not None:
        args += ["--sender", sender]
    for recipient in recipients:
        args += ["--recipient", recipient]
    if log_file is not None:
        args += ["--log-file", str(log_file)]
    return subprocess.run([*args, *extra], input=raw, capture_output=True, env=env, timeout=timeout)


def check_process(proc, log_file: Path | None = None) -> str:
    """
    The invariants of one django-mailpipe run, whatever the message: an
    exit status from the outcome table, no output on success, else exactly
    one line that starts with the enhanced code of a row with that status,
    and never a traceback. Returns the line.
    """
    output = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    log = ""
    if log_file is not None and log_file.exists():
        log = log_file.read_text(errors="replace")[-3000:]
    where = f"exit {proc.returncode}, output {output!r}\nlog: {log}"
    assert "Traceback" not in output, where
    assert proc.returncode in EXIT_CODES, where
    if proc.returncode == 0:
        assert output == "", where
        return ""
    # One line; whether it ends with a line break is the pipe's choice.
    line = output[:-1] if output.endswith("\n") else output
    assert line and "\n" not in line and "\r" not in line, where
    code = line.split(" ", 1)[0]
    assert code in CODES_BY_EXIT[proc.returncode], where
    return line


def take_deliveries(env: dict) -> list[dict]:
    """The rows the record@ view wrote since the last call, which are removed."""
    with sqlite3.connect(env["MAILSERVER_TEST_DB"]) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT * FROM mailapp_delivery ORDER BY id").fetchall()
        db.execute("DELETE FROM mailapp_delivery")
    return [dict(row) for row in rows]


def strip_from_line(raw: bytes) -> bytes:
    """What django-mailpipe hands on: the message without an mbox From line."""
    if raw.startswith(b"From "):
        end = raw.find(b"\n")
        return b"" if end < 0 else raw[end + 1 :]
    return raw
