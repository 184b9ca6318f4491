"""
The hostile-input corpus (tests/corpus/, see its manifest), the generated
cases too big to commit (generate.py) and odd envelopes: each one in process
through the test client, and through django-mailpipe as a real process, held
to the invariants of checks.py and to the outcome or the facts expected.
"""

from __future__ import annotations

import pytest
from django.test import override_settings

from mailserver.status import Outcome
from mailserver.test import Client
from tests.corpus.manifest import CASES

from . import generate
from .checks import (
    CORPUS,
    DEADLINE,
    check_process,
    check_result,
    read_everything,
    run_pipe,
    strip_from_line,
    take_deliveries,
)

EXIT_FOR_CODE = {o.enhanced: o.exit_code for o in Outcome if o.is_permanent}
MIB = 1024 * 1024
BIG = 25 * MIB  # the attachment of the 25 MB case, decoded


@pytest.fixture
def env(process_env):
    take_deliveries(process_env)
    return dict(process_env)


# -- the corpus ---------------------------------------------------------------------


def test_manifest_and_corpus_agree():
    files = {p.name for p in CORPUS.glob("*.eml")}
    assert files == set(CASES), (
        f"without a Case: {sorted(files - set(CASES))}; "
        f"without a file: {sorted(set(CASES) - files)}"
    )
    total = sum(p.stat().st_size for p in CORPUS.iterdir() if p.is_file())
    assert total < 200_000, f"tests/corpus/ holds {total} bytes; generate big cases instead"


def fact(request, name):
    """One fact of the manifest, read from the request."""
    if name.startswith("header:"):
        return request[name.split(":", 1)[1]]
    if name == "date":
        return request.date.isoformat() if request.date else None
    if name == "attachments":
        return [a.name for a in request.attachments]
    if name == "attachment_names_printable":
        return all(ch.isprintable() for a in request.attachments for ch in a.name)
    report = request.dsn
    if name == "dsn":
        if report is None:
            return None
        return [(r.action, r.status, r.final_recipient) for r in report.recipients]
    if name == "dsn_reporting_mta":
        return report.reporting_mta
    if name == "dsn_diagnostic_code":
        return report.recipients[0].diagnostic_code
    if name == "dsn_explanation":
        return report.explanation
    if name == "returned_subject":
        return str(report.returned_message["Subject"])
    value = getattr(request, name)
    return value() if callable(value) else value


def check_fact(request, name, expected) -> None:
    actual = fact(request, name)
    if isinstance(expected, tuple) and expected and expected[0] == "~":
        wanted = expected[1]
        if isinstance(wanted, list):
            missing = [item for item in wanted if item not in actual]
            assert not missing, f"{name}: {actual!r} lacks {missing!r}"
        else:
            assert actual is not None and wanted in actual, f"{name}: {actual!r}"
    else:
        assert actual == expected, f"{name}: {actual!r}, expected {expected!r}"


def read_corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def corpus_params():
    return [
        pytest.param(
            name,
            id=name,
            marks=[pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else [],
        )
        for name, case in sorted(CASES.items())
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("name", corpus_params())
def test_corpus_in_process(name):
    case = CASES[name]
    result = Client().send(read_corpus(name), recipient=case.recipient, sender=case.sender)
    check_result(result, case.expect)
    for key, expected in case.facts.items():
        check_fact(result.request, key, expected)


@pytest.mark.parametrize("name", corpus_params())
def test_corpus_through_the_pipe(name, env, tmp_path):
    case = CASES[name]
    raw = read_corpus(name)
    log = tmp_path / "pipe.log"
    delivered = case.expect == "delivered"
    # One run, two views: inspect@ reads everything (a failure there would
    # defer, exit 75), record@ stores what it was handed.
    recipients = [case.recipient, "record@example.com"] if delivered else [case.recipient]
    proc = run_pipe(env, raw, recipients, case.sender, log_file=log)
    line = check_process(proc, log)
    rows = take_deliveries(env)
    if delivered:
        assert proc.returncode == 0, line
        [row] = rows
        assert bytes(row["raw"]) == strip_from_line(raw)
        assert row["sender"] == (case.sender or "")
        subject = case.facts.get("subject")
        if isinstance(subject, str):
            assert row["subject"] == subject
    else:
        assert (proc.returncode, line.split(" ", 1)[0]) == (EXIT_FOR_CODE[case.expect], case.expect)
        assert rows == []


# -- generated cases ------------------------------------------------------------------


class Gen:
    """A generated case: how to build it, what must become of it, and under which limit."""

    def __init__(
        self, build, expect, mentions="", settings=None, xfail="", pipe_only=False, deadline=None
    ):
        self.build, self.expect, self.mentions = build, expect, mentions
        # A settings module for the pipe, and the same limits overridden in process.
        self.settings = settings
        # Known to fail today, and why (the lead's to fix).
        self.xfail = xfail
        # Too slow to run in process; through the pipe with this --deadline.
        self.pipe_only = pipe_only
        self.deadline = deadline


BIG_LIMIT = ("tests.hostile.settings_big", {"MAIL_MAX_MESSAGE_SIZE": 40 * MIB})
SMALL_LIMIT = ("tests.hostile.settings_small", {"MAIL_MAX_MESSAGE_SIZE": 10_000})

GENERATED = {
    "body-one-line-of-8MB": Gen(lambda: generate.body_line(8 * MIB), "delivered"),
    "header-line-at-limit": Gen(lambda: generate.header_line(16384), "delivered"),
    "header-line-over-limit": Gen(lambda: generate.header_line(16385), "5.6.0", "16384"),
    "header-line-of-4MB": Gen(lambda: generate.header_line(4 * MIB), "5.6.0", "16384"),
    "continuation-line-over-limit": Gen(lambda: generate.folded_line(16385), "5.6.0", "16384"),
    "folded-first-line-at-limit": Gen(lambda: generate.folded_line(16384, first=True), "delivered"),
    "part-header-line-over-limit": Gen(
        lambda: generate.header_line_in_part(16385), "5.6.0", "16384"
    ),
    "headers-at-limit": Gen(lambda: generate.many_headers(1000), "delivered"),
    "headers-over-limit": Gen(lambda: generate.many_headers(1001), "5.6.0", "1000"),
    "headers-50000": Gen(lambda: generate.many_headers(50_000), "5.6.0", "1000"),
    "part-headers-over-limit": Gen(lambda: generate.many_headers_in_part(1001), "5.6.0", "1000"),
    "nested-at-limit": Gen(lambda: generate.nested_multipart(25), "delivered"),
    "nested-over-limit": Gen(lambda: generate.nested_multipart(26), "5.6.0", "25"),
    "nested-300": Gen(lambda: generate.nested_multipart(300), "5.6.0"),
    "nested-5000": Gen(lambda: generate.nested_multipart(5000), "5.6.0"),
    "rfc822-nested-at-limit": Gen(lambda: generate.nested_rfc822(25), "delivered"),
    "rfc822-nested-300": Gen(lambda: generate.nested_rfc822(300), "5.6.0"),
    "parts-at-limit": Gen(lambda: generate.many_parts(500), "delivered"),
    "parts-over-limit": Gen(lambda: generate.many_parts(501), "5.6.0", "500"),
    "parts-5000": Gen(lambda: generate.many_parts(5000), "5.6.0", "500"),
    "size-at-limit": Gen(lambda: generate.sized(10_000), "delivered", settings=SMALL_LIMIT),
    "size-over-limit": Gen(lambda: generate.sized(10_001), "5.3.4", "10000", SMALL_LIMIT),
    "attachment-25MB-raised-limit": Gen(
        lambda: generate.attachment(BIG), "delivered", settings=BIG_LIMIT
    ),
    "attachment-25MB-default-limit": Gen(lambda: generate.attachment(BIG), "5.3.4", str(25 * MIB)),
    # Parts beyond the limit cost the parser nothing much: refused well before
    # the deadline (about 9 s for a million empty parts in 4 MB, in process).
    "empty-parts-4MB": Gen(lambda: generate.empty_parts(700_000), "5.6.0", "500", pipe_only=True),
    # Header lines at the limit, measured as they came: a continuation line,
    # the first line of a folded field in a CR LF message, no space after the
    # colon (each was once refused, being measured a few bytes too long).
    "continuation-line-at-limit": Gen(lambda: generate.folded_line(16384), "delivered"),
    "folded-first-line-at-limit-crlf": Gen(
        lambda: generate.folded_line(16384, first=True, crlf=True), "delivered"
    ),
    "header-line-at-limit-no-space": Gen(
        lambda: generate.header_line(16384, separator=b":"), "delivered"
    ),
    # A field, folded into short lines, and a whole header section: Python's
    # address parser once took 45 s on a To header of 1 MB (64 KB: 1 s), and
    # the pipe deferred at its deadline, again and again.
    "field-at-limit": Gen(lambda: generate.long_field(32768), "delivered"),
    "field-over-limit": Gen(lambda: generate.long_field(32769), "5.6.0", "32768"),
    "to-header-folded-over-1MB": Gen(lambda: generate.folded_header(1 * MIB), "5.6.0", "32768"),
    "section-of-200KB": Gen(lambda: generate.big_section(200), "delivered"),
    "section-of-300KB": Gen(lambda: generate.big_section(300), "5.6.0", "262144"),
    # The email package's header parser recurses for each nested comment: a
    # From of 1000 of them (2 KB) once raised RecursionError in the view, and
    # was deferred forever.
    "comments-nested-1000-deep": Gen(lambda: generate.nested_comments(1000), "delivered"),
}


_built: dict[str, bytes] = {}


def build(name: str) -> bytes:
    """Each generated message is built once per session (the big ones take a second)."""
    if name not in _built:
        if len(_built) > 4:
            _built.clear()
        _built[name] = GENERATED[name].build()
    return _built[name]


def generated_params(pipe: bool):
    return [
        pytest.param(
            name,
            id=name,
            marks=[pytest.mark.xfail(strict=True, reason=gen.xfail)] if gen.xfail else [],
        )
        for name, gen in GENERATED.items()
        if pipe or not gen.pipe_only
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("name", generated_params(pipe=False))
def test_generated_in_process(name):
    gen = GENERATED[name]
    raw = build(name)
    overrides = gen.settings[1] if gen.settings else {}
    with override_settings(**overrides):
        result = Client().send(raw, recipient="inspect@example.com", sender="ann@example.org")
        check_result(result, gen.expect)
    if gen.mentions:
        assert gen.mentions in result.dsn_line(), result.dsn_line()
    if name == "attachment-25MB-raised-limit":
        [attachment] = result.request.attachments
        assert (attachment.name, attachment.size) == ("big.bin", BIG)
        with attachment.open() as file:
            assert file.read() == generate.attachment_bytes(BIG)


@pytest.mark.parametrize("name", generated_params(pipe=True))
def test_generated_through_the_pipe(name, env, tmp_path):
    gen = GENERATED[name]
    raw = build(name)
    if gen.settings:
        env["DJANGO_SETTINGS_MODULE"] = gen.settings[0]
    log = tmp_path / "pipe.log"
    delivered = gen.expect == "delivered"
    recipients = (
        ["inspect@example.com", "record@example.com"] if delivered else ["inspect@example.com"]
    )
    proc = run_pipe(env, raw, recipients, log_file=log, deadline=gen.deadline or DEADLINE)
    line = check_process(proc, log)
    rows = take_deliveries(env)
    if gen.expect is None:
        assert proc.returncode in (0, 65), f"neither delivered nor refused: {line}"
    elif delivered:
        assert proc.returncode == 0, line
        [row] = rows
        assert row["size"] == len(raw)
        assert bytes(row["raw"]) == raw
    else:
        assert (proc.returncode, line.split(" ", 1)[0]) == (EXIT_FOR_CODE[gen.expect], gen.expect)
        assert gen.mentions in line
        assert rows == []


# -- envelopes ----------------------------------------------------------------------------

PLAIN = "plain.eml"

# (sender, recipient, expected): odd but valid addresses are delivered (or are
# simply unknown, 5.1.1); invalid ones are refused with 5.1.3 (recipient) or
# 5.1.7 (sender).
ENVELOPES = {
    "null-sender": ("", "inspect@example.com", "delivered"),
    # SMTP's spelling of the null reverse-path (MAIL FROM:<>).
    "bracketed-null-sender": ("<>", "inspect@example.com", "delivered"),
    "utf8-sender": ("jörg@bücher.example", "inspect@example.com", "delivered"),
    "quoted-sender": ('"ann ortiz"@example.org', "inspect@example.com", "delivered"),
    "address-literal-sender": ("ann@[192.0.2.1]", "inspect@example.com", "delivered"),
    "bracketed-sender": ("<ann@example.org>", "inspect@example.com", "delivered"),
    "bracketed-recipient": ("ann@example.org", "<inspect@example.com>", "delivered"),
    "uppercase-domain": ("ann@example.org", "inspect@EXAMPLE.COM", "delivered"),
    "subaddress": ("ann@example.org", "inspect+a.tag@example.com", "delivered"),
    "idn-recipient": ("ann@example.org", "echo@xn--bcher-kva.example", "delivered"),
    "quoted-unknown-recipient": ("ann@example.org", '"in spect"@example.com', "5.1.1"),
    "utf8-unknown-recipient": ("ann@example.org", "prüfer@example.com", "5.1.1"),
    "recipient-with-space": ("ann@example.org", "in spect@example.com", "5.1.3"),
    "recipient-with-crlf": ("ann@example.org", "inspect@example.com\r\nRCPT TO:<x@y>", "5.1.3"),
    "recipient-with-lf": ("ann@example.org", "insp\nect@example.com", "5.1.3"),
    "recipient-with-tab": ("ann@example.org", "in\tspect@example.com", "5.1.3"),
    "recipient-with-two-ats": ("ann@example.org", "inspect@evil@example.com", "5.1.3"),
    "recipient-empty-label": ("ann@example.org", "inspect@example..com", "5.1.3"),
    "recipient-empty-domain": ("ann@example.org", "inspect@", "5.1.3"),
    "recipient-empty-local-part": ("ann@example.org", "@example.com", "5.1.3"),
    "recipient-leading-dot": ("ann@example.org", ".inspect@example.com", "5.1.3"),
    "recipient-unclosed-quote": ("ann@example.org", '"inspect@example.com', "5.1.3"),
    "recipient-hyphen-label": ("ann@example.org", "inspect@-example.com", "5.1.3"),
    "recipient-two-trailing-dots": ("ann@example.org", "inspect@example.com..", "5.1.3"),
    "sender-with-two-ats": ("ann@@example.org", "inspect@example.com", "5.1.7"),
    "sender-with-space": ("ann ortiz@example.org", "inspect@example.com", "5.1.7"),
    "sender-with-crlf": ("ann@example.org\r\nX-Evil: 1", "inspect@example.com", "5.1.7"),
    "sender-empty-label": ("ann@.example.org", "inspect@example.com", "5.1.7"),
    "sender-only-at": ("@", "inspect@example.com", "5.1.7"),
    "sender-two-trailing-dots": ("ann@example.org..", "inspect@example.com", "5.1.7"),
    # Line ends for some readers, reordering and invisible characters, and
    # RFC 5321's lengths (at the limit is a valid address, merely unknown).
    "recipient-with-nel": ("ann@example.org", "insp\x85ect@example.com", "5.1.3"),
    "recipient-with-line-separator": ("ann@example.org", "inspect@exa\u2028mple.com", "5.1.3"),
    "recipient-with-bidi-override": ("ann@example.org", "moc.elpmaxe\u202e@x.org", "5.1.3"),
    "recipient-with-no-break-space": ("ann@example.org", "in\u00a0spect@example.com", "5.1.3"),
    "recipient-local-part-64": ("ann@example.org", "a" * 64 + "@example.com", "5.1.1"),
    "recipient-local-part-65": ("ann@example.org", "a" * 65 + "@example.com", "5.1.3"),
    "recipient-label-64": ("ann@example.org", "inspect@" + "b" * 64 + ".com", "5.1.3"),
    "recipient-local-part-300": ("ann@example.org", "x" * 300 + "@example.com", "5.1.3"),
    "sender-with-bidi-isolate": ("ann\u2066@example.org", "inspect@example.com", "5.1.7"),
    "sender-with-paragraph-separator": ("ann@example.org\u2029", "inspect@example.com", "5.1.7"),
    "sender-label-100": ("ann@" + "c" * 100 + ".org", "inspect@example.com", "5.1.7"),
}
# A NUL cannot travel in an argument: in process only.
IN_PROCESS_ENVELOPES = {
    "recipient-with-nul": ("ann@example.org", "inspect\x00@example.com", "5.1.3"),
    "sender-with-nul": ("ann\x00@example.org", "inspect@example.com", "5.1.7"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted({**ENVELOPES, **IN_PROCESS_ENVELOPES}))
def test_envelope_in_process(name):
    sender, recipient, expect = {**ENVELOPES, **IN_PROCESS_ENVELOPES}[name]
    result = Client().send(read_corpus(PLAIN), recipient=recipient, sender=sender)
    check_result(result, expect)
    if expect != "delivered":
        assert result.response is None or getattr(result.response, "seen", None) is None


@pytest.mark.parametrize("name", sorted(ENVELOPES))
def test_envelope_through_the_pipe(name, env, tmp_path):
    sender, recipient, expect = ENVELOPES[name]
    log = tmp_path / "pipe.log"
    proc = run_pipe(env, read_corpus(PLAIN), [recipient], sender, log_file=log)
    line = check_process(proc, log)
    if expect == "delivered":
        assert proc.returncode == 0, line
    else:
        assert (proc.returncode, line.split(" ", 1)[0]) == (EXIT_FOR_CODE[expect], expect)


# -- what a request shows for a message the view gets ------------------------------------


@pytest.mark.django_db
def test_read_everything_sees_the_baseline():
    """The checker itself: it reads what it should on the one unbroken message."""
    result = Client().send(read_corpus(PLAIN), recipient="inspect@example.com")
    seen = read_everything(result.request)
    assert seen["subject"] == "The baseline: nothing odd here"
    assert seen["cc"] == ["bo@example.org"] and seen["attachments"] == []
