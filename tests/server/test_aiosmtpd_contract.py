"""
What the server relies on in aiosmtpd beyond its documented hooks. If an
aiosmtpd release renames or reshapes one of these members, this fails with
its name, rather than the server failing in production.
"""

import asyncio
import inspect
import socket

import aiosmtpd
import aiosmtpd.lmtp
import aiosmtpd.smtp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailserver.server.protocol import AIOSMTPD_CONTRACT, LMTPSession


@pytest.mark.parametrize(
    "cls,name,parameters",
    [
        (cls, name, parameters)
        for cls in ("SMTP", "LMTP")
        for name, parameters in sorted(AIOSMTPD_CONTRACT[cls].items())
    ],
)
def test_private_methods_keep_their_signatures(cls, name, parameters):
    owner = {"SMTP": aiosmtpd.smtp.SMTP, "LMTP": aiosmtpd.lmtp.LMTP}[cls]
    member = getattr(owner, name, None)
    assert member is not None, f"aiosmtpd {aiosmtpd.__version__}: {cls}.{name} is gone"
    # The smtp_* commands are wrapped by @syntax: their own signature counts.
    member = inspect.unwrap(member)
    assert list(inspect.signature(member).parameters) == parameters, (
        f"aiosmtpd {aiosmtpd.__version__}: {cls}.{name} changed its parameters"
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
    session_limit = 0

    def admit(self, transport):
        return None

    def session_opened(self, session):
        pass

    def session_closed(self, session):
        pass


@given(
    st.one_of(
        st.text(alphabet='ab.@<>-_+ "x1[]:(\t)\u00fc', max_size=20),
        st.builds(
            lambda local, domain, rest: f"<{local}@{domain}>{rest}",
            st.from_regex(r"[a-z0-9+._-]{1,10}", fullmatch=True),
            st.from_regex(r"[a-z0-9.-]{1,12}", fullmatch=True),
            st.text(alphabet=" \t()=ASIZE1", max_size=10),
        ),
    )
)
def test_reading_a_path_agrees_with_aiosmtpd(arg):
    # The server reads the common <local@domain> path itself, for speed:
    # whatever it reads must be what aiosmtpd's own parser reads.
    session = LMTPSession(_Handler(), server=_Server(), hostname="test")
    try:
        expected = aiosmtpd.smtp.SMTP._getaddr(session, arg)
    except Exception as exc:  # pragma: no cover - aiosmtpd's own failures
        expected = type(exc)
    try:
        got = session._getaddr(arg)
    except Exception as exc:  # pragma: no cover
        got = type(exc)
    assert got == expected
