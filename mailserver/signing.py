"""
Signed reply addresses: a token in the subaddress that only this site can
make, so that ``ticket-42+<token>@bugs.example.com`` cannot be guessed from
``ticket-42@`` nor moved to ``ticket-43@``.

The token is stateless: an HMAC made with :mod:`django.core.signing` on
``SECRET_KEY``, checked against ``SECRET_KEY_FALLBACKS`` too so that keys
can rotate. It is written in lower-case base32 (RFC 4648's alphabet, without
padding) because mail systems and people fold the case of local parts, and
it is short enough to leave the route's own text room within RFC 5321's 64
octets::

    flags  issued  [expires]  mac        [bind]
    1      6       6          20         8        characters

- *flags* says which optional parts follow (and leaves room for a version);
- *issued* and *expires* are minutes since 2024-01-01 UTC (30 bits each:
  enough until the year 4065);
- *mac* (100 bits) covers the flags, the times and the address without its
  token, lower-cased: the route and its arguments are in that address, so a
  token is good for that address only;
- *bind* (40 bits), when the address was made for one sender, covers the
  mac, that sender's address and the per-user value of
  ``MAIL_SIGNING_USER_KEY``. It is kept apart from the mac so that the mac
  can be checked while the recipient is given (``RCPT TO``), before the
  message, and so the sender, is known.

Stateless means a token cannot be withdrawn one by one: it lasts until it
expires, the key that made it leaves ``SECRET_KEY_FALLBACKS``, or (for a
bound token) the user's value in ``MAIL_SIGNING_USER_KEY`` changes.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from django.core import signing
from django.utils.crypto import salted_hmac
from django.utils.module_loading import import_string

from .exceptions import BadAddressSignature, ImproperlyConfigured

if TYPE_CHECKING:  # pragma: no cover
    from .addresses import Address
    from .request import EmailRequest
    from .resolvers import ResolverMatch

ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)
_EPOCH_SECONDS = int(EPOCH.timestamp())
TIME_CHARS = 6
MAC_CHARS = 20
BIND_CHARS = 8
FLAG_EXPIRES = 1
FLAG_BOUND = 2
_KNOWN_FLAGS = FLAG_EXPIRES | FLAG_BOUND

# The longest token: flags, issued, expires, mac, bind.
MAX_TOKEN_LENGTH = 1 + 2 * TIME_CHARS + MAC_CHARS + BIND_CHARS


class _Base32Signer(signing.Signer):
    """
    Django's Signer (keys, fallback keys, salt, constant-time comparison)
    with a signature written in ``length`` characters of lower-case base32.
    """

    def __init__(self, *, length: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.length = length

    def signature(self, value: str | bytes, key: str | bytes | None = None) -> str:
        digest = salted_hmac(
            f"{self.salt!s}signer", value, key or self.key, algorithm=self.algorithm
        ).digest()
        return base64.b32encode(digest).decode("ascii").lower()[: self.length]


def _signers() -> tuple[_Base32Signer, _Base32Signer]:
    # Built per call: SECRET_KEY and its fallbacks are read each time, so
    # override_settings and a rotation take effect at once. It costs
    # nothing next to the HMAC itself.
    return (
        _Base32Signer(length=MAC_CHARS, salt="mailserver.signing.address"),
        _Base32Signer(length=BIND_CHARS, salt="mailserver.signing.bind"),
    )


def _encode_int(value: int, width: int) -> str:
    if not 0 <= value < 32**width:
        raise ValueError(f"{value} does not fit in {width} base32 characters")
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 32)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def _decode_int(text: str) -> int:
    value = 0
    for ch in text:
        value = value * 32 + _VALUE[ch]
    return value


def _minutes(moment: datetime) -> int:
    return (int(moment.timestamp()) - _EPOCH_SECONDS) // 60


def _moment(minutes: int) -> datetime:
    return EPOCH + timedelta(minutes=minutes)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def signed_text(address: str) -> str:
    """What the mac covers: the address without its token, lower-cased."""
    return address.strip().lower()


def normalize_bound(address: str) -> str:
    """
    A bound sender's address as both sides compare it: the bare address
    (``Ann <Ann@Example.org>`` gives ``ann@example.org``), lower-cased.
    """
    from email.utils import parseaddr

    from .addresses import strip

    return (parseaddr(address)[1] or strip(address)).lower()


def user_key(address: str) -> str:
    """The per-user value of ``MAIL_SIGNING_USER_KEY`` for a bound address, or ""."""
    from .conf import settings

    hook = settings.MAIL_SIGNING_USER_KEY
    if not hook:
        return ""
    func: Callable[[str], Any] = import_string(hook) if isinstance(hook, str) else hook
    value = func(address)
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Signature:
    """
    What a valid token carried; the view reads it as ``request.signature``.
    ``bound`` is the sender's address the token was made for (None when it
    was made for anyone); it is known once the message is, so at ``RCPT``
    time only ``is_bound`` is.
    """

    token: str
    address: str
    issued: datetime
    expires: datetime | None = None
    is_bound: bool = False
    bound: str | None = None
    mac: str = ""
    bind_tag: str = ""


def make_token(
    address: str,
    *,
    bind: str | None = None,
    expires: timedelta | datetime | int | None = None,
    issued: datetime | None = None,
) -> str:
    """
    The token for ``address`` (the address without any subaddress).
    ``expires`` is a lifetime (timedelta or seconds) or a moment, kept to the
    minute; ``issued`` defaults to now (tests pass one in the past).
    """
    issued = issued or _now()
    flags = 0
    parts = [_encode_int(_minutes(issued), TIME_CHARS)]
    if expires is not None:
        if isinstance(expires, int):
            expires = timedelta(seconds=expires)
        if isinstance(expires, timedelta):
            expires = issued + expires
        flags |= FLAG_EXPIRES
        parts.append(_encode_int(_minutes(expires), TIME_CHARS))
    if bind:
        flags |= FLAG_BOUND
    head = ALPHABET[flags] + "".join(parts)
    mac_signer, bind_signer = _signers()
    mac = mac_signer.signature(f"{head}|{signed_text(address)}")
    token = head + mac
    if bind:
        bound = normalize_bound(bind)
        token += bind_signer.signature(f"{mac}|{bound}|{user_key(bound)}")
    return token


def sign_address(address: str, **kwargs: Any) -> str:
    """
    ``address`` with a token as its subaddress: ``ticket-42+<token>@...``.
    Takes :func:`make_token`'s options. Refuses a local part that would break
    RFC 5321's 64 octets.
    """
    from .addresses import MAX_LOCAL_PART, split
    from .conf import settings

    delimiter = settings.MAIL_SUBADDRESS_DELIMITER
    if not delimiter:
        raise ImproperlyConfigured(
            "Signed addresses carry their token as a subaddress: set "
            'MAIL_SUBADDRESS_DELIMITER ("+" by default).'
        )
    local, domain = split(address)
    if any(ch in local for ch in delimiter):
        raise ValueError(f"{address!r} already has a subaddress: sign the address without one")
    token = make_token(address, **kwargs)
    signed_local = f"{local}{delimiter[0]}{token}"
    if (size := len(signed_local.encode("utf-8"))) > MAX_LOCAL_PART:
        raise ValueError(
            f"The signed local part {signed_local!r} has {size} octets; RFC 5321 allows "
            f"{MAX_LOCAL_PART}. The token takes {len(token) + 1}: shorten the route's text."
        )
    return f"{signed_local}@{domain}" if domain else signed_local


def _parse(token: str) -> tuple[int, str, str | None, str, str] | None:
    """(flags, issued, expires, mac, bind) of a well-formed token, else None."""
    if not token or token[0] not in _VALUE:
        return None
    flags = _VALUE[token[0]]
    if flags & ~_KNOWN_FLAGS:
        return None
    length = 1 + TIME_CHARS + MAC_CHARS
    length += TIME_CHARS if flags & FLAG_EXPIRES else 0
    length += BIND_CHARS if flags & FLAG_BOUND else 0
    if len(token) != length or not all(ch in _VALUE for ch in token):
        return None
    at = 1 + TIME_CHARS
    issued = token[1:at]
    expires = None
    if flags & FLAG_EXPIRES:
        expires, at = token[at : at + TIME_CHARS], at + TIME_CHARS
    mac = token[at : at + MAC_CHARS]
    return flags, issued, expires, mac, token[at + MAC_CHARS :]


def check_token(address: str, token: str, *, now: datetime | None = None) -> Signature:
    """
    Check ``token`` for ``address`` (without the token); raise
    BadAddressSignature (5.7.1) saying what is wrong. The binding, if any,
    is checked later by :func:`check_binding`, once the sender is known.
    """
    if not token:
        raise BadAddressSignature(f"<{address}>: reply address not signed")
    token = token.lower()
    parsed = _parse(token)
    if parsed is None:
        raise BadAddressSignature(f"<{address}>: reply address signature invalid")
    flags, issued, expires, mac, bind = parsed
    head = token[: len(token) - len(mac) - len(bind)]
    mac_signer, _ = _signers()
    try:
        mac_signer.unsign(f"{head}|{signed_text(address)}:{mac}")
    except signing.BadSignature:
        raise BadAddressSignature(f"<{address}>: reply address signature invalid") from None
    now = now or _now()
    signature = Signature(
        token=token,
        address=address,
        issued=_moment(_decode_int(issued)),
        expires=_moment(_decode_int(expires)) if expires is not None else None,
        is_bound=bool(flags & FLAG_BOUND),
        mac=mac,
        bind_tag=bind,
    )
    if signature.expires is not None and now >= signature.expires:
        raise BadAddressSignature(f"<{address}>: reply address expired")
    from .conf import settings

    max_age = settings.MAIL_SIGNING_MAX_AGE
    if max_age is not None:
        if not isinstance(max_age, timedelta):
            max_age = timedelta(seconds=max_age)
        if now - signature.issued > max_age:
            raise BadAddressSignature(f"<{address}>: reply address expired")
    return signature


def check_binding(signature: Signature, candidates: Iterable[str]) -> Signature:
    """
    The signature with ``bound`` set to whichever of ``candidates`` (the
    sender's addresses) the token was made for; BadAddressSignature if none.
    An unbound signature is returned as it is.
    """
    if not signature.is_bound:
        return signature
    _, bind_signer = _signers()
    for candidate in dict.fromkeys(normalize_bound(c) for c in candidates if c):
        value = f"{signature.mac}|{candidate}|{user_key(candidate)}"
        try:
            bind_signer.unsign(f"{value}:{signature.bind_tag}")
        except signing.BadSignature:
            continue
        return replace(signature, bound=candidate)
    raise BadAddressSignature(f"<{signature.address}>: reply address issued to another sender")


def from_addresses(request: EmailRequest) -> list[str]:
    """The default binding candidates: the From addresses of the message."""
    return [a.addr_spec for a in request.addresses("From")]


def verify(
    match: ResolverMatch, address: Address, request: EmailRequest | None = None
) -> Signature | None:
    """
    Check the signature of a recipient that resolved to ``match``: None for
    a route that is not signed; else the Signature, or BadAddressSignature.
    Without ``request`` (at RCPT time) the binding is left for later.
    """
    signed = match.signed
    if not signed:
        return None
    signature = check_token(str(address), address.subaddress)
    if request is not None and signature.is_bound:
        candidates = signed(request) if callable(signed) else from_addresses(request)
        signature = check_binding(signature, candidates)
    return signature
