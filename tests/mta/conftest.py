"""
Session fixtures for the end-to-end tests: one pipe runtime, one private
Postfix and one private Exim for the whole run (see harness.py).

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

from .harness import Exim, PipeRuntime, Postfix, missing_prerequisites, new_root, pipe_user


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
