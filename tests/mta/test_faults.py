"""
The fault-injection run of issue 8 (tests/mta/faults.py), smaller than
benchmarks/faults.py runs it: messages through a real Postfix while the
view raises, the outgoing mail backend fails, the process handling them is
killed and some are sent twice upstream. With mailserver.store every
message must come out handled once and answered once; without it, the same
run must show the duplicates, or the check proves nothing.

Each test prints its figures (pytest -s, or on failure).
"""

from __future__ import annotations

import pytest

from .faultproject.plan import KILL_POINTS
from .faults import FaultRun, Figures, store_available

pytestmark = pytest.mark.mta

needs_store = pytest.mark.skipif(
    not store_available(), reason="mailserver.store is not in this checkout"
)


def run(root, **kwargs) -> Figures:
    figures = FaultRun(root, **kwargs).run()
    print(figures.format())
    return figures


def assert_faults_struck(figures: Figures) -> None:
    """A run whose faults did not happen passes without proving anything."""
    assert figures.view_raised, figures.format()
    assert figures.send_failures, figures.format()
    assert figures.resent, figures.format()
    assert figures.deferrals, figures.format()
    # A timer may outlive its process; every other point kills for sure.
    assert set(figures.kills) >= set(KILL_POINTS) - {"timer"}, figures.format()


@needs_store
def test_pipe_on_postgres(fault_root, postgres):
    figures = run(fault_root, messages=200, database="postgres", path="pipe")
    assert_faults_struck(figures)
    assert figures.problems() == [], figures.format()


@needs_store
def test_lmtp_on_postgres(fault_root, postgres):
    """Postfix's lmtp client to runmailserver, which every kill takes down with all its sessions."""
    figures = run(fault_root, messages=200, database="postgres", path="lmtp")
    assert_faults_struck(figures)
    assert figures.server_restarts == sum(figures.kills.values()), figures.format()
    assert figures.problems() == [], figures.format()


@needs_store
def test_pipe_on_sqlite(fault_root):
    figures = run(fault_root, messages=100, database="sqlite", path="pipe")
    assert_faults_struck(figures)
    assert figures.problems() == [], figures.format()


def test_without_the_store_messages_are_handled_twice(fault_root):
    """The same run without mailserver.store: the checks must catch what it lets through."""
    figures = run(fault_root, messages=100, database="sqlite", path="pipe", store=False)
    assert_faults_struck(figures)
    assert figures.rows > figures.messages, figures.format()
    assert any("handled more than once" in p for p in figures.problems()), figures.format()
    # Nothing is lost without the store either: Postfix retried every fault.
    assert figures.delivered == figures.injected and not figures.bounced, figures.format()
