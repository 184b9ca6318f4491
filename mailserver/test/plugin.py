"""
pytest fixtures, registered through the ``pytest11`` entry point.

pytest imports this module in every run of every project that has the
package installed: it imports nothing of the package or of Django until a
fixture is used.
"""

import pytest


@pytest.fixture
def mail_client():
    """A :class:`mailserver.test.Client` for the project's ROOT_MAILCONF."""
    from mailserver.test import Client

    return Client()


@pytest.fixture
def mail_factory():
    """A :class:`mailserver.test.RequestFactory`, to build requests for calling views directly."""
    from mailserver.test import RequestFactory

    return RequestFactory()
