"""
Property-based tests: generated hostile messages and envelopes (see
strategies.py) hold to the invariants of checks.py, many examples in
process, a few through django-mailpipe as a real process.

The runs are derandomized and keep no example database, so that CI sees the
same examples every time. To explore further on a workstation, run with
HYPOTHESIS_RANDOM=1: fresh random examples, ten times as many.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailserver.status import Outcome
from mailserver.test import Client
from tests.corpus.manifest import CASES

from . import strategies as hs
from .checks import (
    CORPUS,
    check_process,
    check_result,
    run_pipe,
    strip_from_line,
    take_deliveries,
)

# HYPOTHESIS_RANDOM=1: new random examples each run, ten times as many.
EXPLORE = bool(os.environ.get("HYPOTHESIS_RANDOM"))
SCALE = 10 if EXPLORE else 1
EXIT_FOR_CODE = {o.enhanced: o.exit_code for o in Outcome if o.is_permanent}

in_process = settings(
    max_examples=300 * SCALE,
    deadline=None,
    derandomize=not EXPLORE,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
through_the_pipe = settings(
    max_examples=15 * SCALE,
    deadline=None,
    derandomize=not EXPLORE,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

valid_sender = st.one_of(st.just(""), st.just("ann@example.org"), hs.valid_address)
valid_recipient = st.sampled_from(
    ["inspect@example.com", "<inspect@example.com>", "inspect@EXAMPLE.COM", "inspect+x@example.com"]
)


def expected(raw: bytes, sender_ok: bool = True, recipient_ok: bool = True) -> str:
    """What must become of a generated message, by the rules of issue 4."""
    if not raw.strip():
        return "5.6.0"
    if not sender_ok:
        return "5.1.7"
    if not recipient_ok:
        return "5.1.3"
    return "delivered"


envelopes = st.one_of(
    st.tuples(valid_sender, valid_recipient, st.just("")),
    st.tuples(hs.invalid_address(), valid_recipient, st.just("sender")),
    st.tuples(valid_sender, hs.invalid_address(), st.just("recipient")),
)


@pytest.mark.django_db
@in_process
@given(raw=hs.message(), envelope=envelopes)
def test_generated_messages_in_process(raw, envelope):
    sender, recipient, broken = envelope
    result = Client().send(raw, recipient=recipient, sender=sender)
    check_result(
        result, expected(raw, sender_ok=broken != "sender", recipient_ok=broken != "recipient")
    )


@pytest.mark.django_db
@in_process
@given(
    raw=st.sampled_from(sorted(CASES)).map(lambda name: (CORPUS / name).read_bytes()),
    sender=st.one_of(st.none(), st.text(max_size=40)),
    recipient=st.text(max_size=40),
)
def test_junk_envelopes_in_process(raw, sender, recipient):
    """
    Any string at all as sender or recipient, with any message of the
    corpus: whatever the outcome, it is the sender's to hear about
    (delivered, or a permanent refusal with one line), never a deferral and
    never an exception.
    """
    result = Client().send(raw, recipient=recipient, sender=sender)
    if not recipient:
        # No recipient from the transport: the headers name it, or the run is
        # misconfigured (4.3.5), which is not the sender's fault.
        return
    check_result(result, None)


@pytest.mark.django_db
@in_process
@given(value=hs.header_value(), name=st.sampled_from(hs.HEADER_NAMES))
def test_any_header_value_reads_as_one_line(value, name):
    """One hostile value in a known header of an otherwise plain message."""
    raw = (
        b"From: Ann <ann@example.org>\nTo: inspect@example.com\nSubject: one field\n"
        + name.encode()
        + b": "
        + value
        + b"\n\nbody\n"
    )
    result = Client().send(raw, recipient="inspect@example.com", sender="ann@example.org")
    check_result(result, "delivered")


# -- through django-mailpipe ----------------------------------------------------------


@pytest.fixture
def env(process_env):
    take_deliveries(process_env)
    return dict(process_env)


@through_the_pipe
@given(
    raw=hs.message(),
    envelope=st.one_of(
        st.tuples(valid_sender, valid_recipient, st.just("")),
        st.tuples(hs.invalid_address(allow_nul=False), valid_recipient, st.just("sender")),
        st.tuples(valid_sender, hs.invalid_address(allow_nul=False), st.just("recipient")),
    ),
)
def test_generated_messages_through_the_pipe(env, tmp_path, raw, envelope):
    sender, recipient, broken = envelope
    # The pipe drops a leading mbox "From " line (which a generated "From :"
    # header can look like) before anything else sees the message.
    want = expected(
        strip_from_line(raw), sender_ok=broken != "sender", recipient_ok=broken != "recipient"
    )
    log = tmp_path / "pipe.log"
    proc = run_pipe(env, raw, [recipient, "record@example.com"], sender, log_file=log)
    line = check_process(proc, log)
    rows = take_deliveries(env)
    if want == "delivered":
        assert proc.returncode == 0, line
        assert len(rows) == 1
    else:
        assert (proc.returncode, line.split(" ", 1)[0]) == (EXIT_FOR_CODE[want], want), line
