"""pytest fixtures, registered through the ``pytest11`` entry point."""

import pytest


@pytest.fixture
def mail_client():
    """A :class:`mailserver.test.Client` for the project's ROOT_MAILCONF."""
    from mailserver.test import Client

    return Client()
