"""
What the server relies on in aiosmtpd beyond its documented hooks. If an
aiosmtpd release renames or reshapes one of these members, this fails with
its name, rather than the server failing in production.
"""

import asyncio
import inspect
import socket

import aiosmtpd
import aiosmtpd.smtp
import pytest

from mailserver.server.protocol import AIOSMTPD_CONTRACT, LMTPSession


@pytest.mark.parametrize("name,parameters", sorted(AIOSMTPD_CONTRACT["SMTP"].items()))
def test_private_methods_keep_their_signatures(name, parameters):
    member = getattr(aiosmtpd.smtp.SMTP, name, None)
    assert member is not None, f"aiosmtpd {aiosmtpd.__version__}: SMTP.{name} is gone"
    assert list(inspect.signature(member).parameters) == parameters, (
        f"aiosmtpd {aiosmtpd.__version__}: SMTP.{name} changed its parameters"
    )


def test_a_connected_session_has_the_state_we_read():
    async def connect():
        ours, theirs = socket.socketpair()
        loop = asyncio.get_running_loop()
        transport, session = await loop.connect_accepted_socket(
            lambda: LMTPSession(_Handler(), server=_Server(), hostname="test"), ours
        )
        try:
            missing = [n for n in AIOSMTPD_CONTRACT["instance"] if not hasattr(session, n)]
            missing += [
                f"Session.{n}"
                for n in AIOSMTPD_CONTRACT["Session"]
                if not hasattr(session.session, n)
            ]
            missing += [
                f"Envelope.{n}"
                for n in AIOSMTPD_CONTRACT["Envelope"]
                if not hasattr(session.envelope, n)
            ]
            assert isinstance(session._reader, asyncio.StreamReader)
            assert session.session.xforward == {}
            return missing
        finally:
            transport.close()
            theirs.close()

    assert asyncio.run(connect()) == []


def test_the_pinned_minor_version_is_the_installed_one():
    from importlib.metadata import requires

    pins = [r for r in requires("django-mailserver") if r.startswith("aiosmtpd")]
    assert pins and all("<1.5" in pin for pin in pins), pins
    assert aiosmtpd.__version__.startswith("1.4."), aiosmtpd.__version__


class _Handler:
    pass


class _Server:
    draining = False

    def admit(self, transport):
        return None

    def session_opened(self, session):
        pass

    def session_closed(self, session):
        pass
