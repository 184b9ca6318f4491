"""
Session fixtures for the end-to-end tests: one pipe runtime, one private
Postfix and one private Exim for the whole run (see harness.py). For the warm
path, one runmailserver and a Postfix and an Exim for each of its two ways
in (the lmtp transport, and the pipe running django-mailpipe --via), each
started only when a test asks for it. The fault-injection runs build their
own (tests/mta/faults.py).

Environment knobs:
  MTA_REQUIRED=1        fail, instead of skip, when root, the MTAs or the pipe user are missing
  MTA_KEEP=1            keep the instances' directory after the run (path is printed)
  MTA_TMPDIR            where that directory is made (default /tmp; must be
                        searchable by the pipe user)
  MTA_PIPE_USER         account the pipe runs as (default: mailpipe)
  MTA_PIPE_PYTHON       interpreter the pipe's virtualenv is made from (default: /usr/bin/python3)
  MTA_PIPE_COMMAND      run this command instead of the virtualenv's django-mailpipe
"""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from .harness import (
    Exim,
    PipeRuntime,
    Postfix,
    ServerProcess,
    missing_prerequisites,
    new_root,
    pipe_user,
)


def _skip_unless_ready(mta: str | None = None) -> None:
    reason = missing_prerequisites(mta)
    if reason:
        if os.environ.get("MTA_REQUIRED"):
            pytest.fail(f"MTA_REQUIRED is set but {reason}", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def mta_root():
    _skip_unless_ready()
    root = new_root("mta")
    yield root
    if os.environ.get("MTA_KEEP"):
        sys.stderr.write(f"\nMTA test instances kept in {root}\n")
    else:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pipe_runtime(mta_root):
    (mta_root / "pipe").mkdir()
    return PipeRuntime(mta_root / "pipe", pipe_user()).build()


@pytest.fixture(scope="session")
def postfix(mta_root, pipe_runtime):
    _skip_unless_ready("postfix")
    instance = Postfix(mta_root / "postfix", pipe_runtime)
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def exim(mta_root, pipe_runtime):
    _skip_unless_ready("exim")
    instance = Exim(mta_root / "exim", pipe_runtime)
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()


@pytest.fixture(params=["postfix", "exim"])
def mta(request):
    """Each test that takes `mta` runs once against each MTA."""
    _skip_unless_ready(request.param)
    return request.getfixturevalue(request.param)


# The warm path ----------------------------------------------------------------


@pytest.fixture(scope="session")
def mailserver(mta_root, pipe_runtime):
    """runmailserver on a unix socket, as the pipe user, for the whole run."""
    _skip_unless_ready("server")
    server = ServerProcess(mta_root / "server", pipe_runtime)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _instance(cls, mta_root, pipe_runtime, mailserver, mode):
    instance = cls(mta_root / f"{cls.name}-{mode}", pipe_runtime, mode=mode, server=mailserver)
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def postfix_lmtp(mta_root, pipe_runtime, mailserver):
    _skip_unless_ready("postfix")
    yield from _instance(Postfix, mta_root, pipe_runtime, mailserver, "lmtp")


@pytest.fixture(scope="session")
def postfix_via(mta_root, pipe_runtime, mailserver):
    _skip_unless_ready("postfix")
    yield from _instance(Postfix, mta_root, pipe_runtime, mailserver, "via")


@pytest.fixture(scope="session")
def exim_lmtp(mta_root, pipe_runtime, mailserver):
    _skip_unless_ready("exim")
    yield from _instance(Exim, mta_root, pipe_runtime, mailserver, "lmtp")


@pytest.fixture(scope="session")
def exim_via(mta_root, pipe_runtime, mailserver):
    _skip_unless_ready("exim")
    yield from _instance(Exim, mta_root, pipe_runtime, mailserver, "via")


# The fault-injection run -------------------------------------------------------


@pytest.fixture
def fault_root():
    """A directory for one fault-injection run (tests/mta/faults.py), which builds the rest."""
    _skip_unless_ready("postfix")
    root = new_root("faults")
    yield root
    if os.environ.get("MTA_KEEP"):
        sys.stderr.write(f"\nfault-injection run kept in {root}\n")
    else:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    """PostgreSQL at 127.0.0.1:5432 with trust auth for user postgres, as CI has it."""
    from .faults import missing_postgres

    reason = missing_postgres()
    if reason:
        if os.environ.get("MTA_REQUIRED"):
            pytest.fail(f"MTA_REQUIRED is set but {reason}", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(params=["postfix_lmtp", "postfix_via", "exim_lmtp", "exim_via"])
def warm_mta(request):
    """Each test that takes `warm_mta` runs once per MTA and way into the server."""
    return request.getfixturevalue(request.param)
