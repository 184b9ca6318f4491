"""
Who really sent a message: the verdicts of our own MTA (SPF, DKIM, DMARC,
ARC) read from its Authentication-Results headers (RFC 8601), and whether
they vouch for the From address.

Anyone can write an Authentication-Results header into a message, so only
two kinds are read:

- those whose authserv-id is one of ``MAIL_AUTHSERV_IDS`` (the name your
  MTA writes in them), and
- among those, only the ones above the Received header of the hop that
  brought the message into your system. Headers are added at the top as a
  message travels, so everything below that Received header was already in
  the message when it arrived, and a sender could have written it (RFC
  8601, section 5). ``MAIL_TRUSTED_HOPS`` says how many Received headers
  your own MTAs add (1: the MX hands the message to Django itself).

Your MTA should also strip incoming headers that claim its authserv-id, as
RFC 8601 asks (contrib/auth/ shows how): a sender who connects directly
writes no Received header of its own, and a forged header of a method your
MTA does not evaluate would then sit inside the trusted block. Where one
method has several verdicts, the topmost (your MTA's) wins.

Parsing is ``authres``'s, with its DMARC and ARC features; it is imported
only when a message has a header worth parsing.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .request import EmailRequest

# The authserv-id opens the header's value, after any comments (RFC 8601 2.2).
_AUTHSERV_ID = re.compile(r"\s*(?:\([^()]*\)\s*)*([^\s;()]+)")
_UNFOLD = re.compile(r"\r?\n(?=[ \t])")

# The name in-process verification (MAIL_VERIFY_SENDERS) gives its results.
IN_PROCESS_ID = "mailserver.in-process"


@functools.cache
def _feature_context():
    import authres
    import authres.arc
    import authres.dmarc

    return authres.FeatureContext(authres.dmarc, authres.arc)


def parse_header(value: str):
    """An Authentication-Results value parsed by authres (raises authres.AuthResError)."""
    return _feature_context().parse_value(" ".join(_UNFOLD.sub("", value).split()))


def authserv_id(value: str) -> str:
    match = _AUTHSERV_ID.match(value)
    return match.group(1).lower() if match else ""


@dataclass
class Authentication:
    """
    ``request.authentication``: the trusted results, topmost first, and the
    verdict on the From address. ``ignored`` says, one line per header, why
    a header that looked like ours was not believed.
    """

    results: list[Any] = field(default_factory=list)
    headers: list[Any] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    from_domain: str = ""
    sender_verified: bool = False
    reason: str = ""

    def __bool__(self) -> bool:
        return bool(self.results)

    def get(self, method: str) -> Any | None:
        """The topmost trusted result of one method (``"dmarc"``), or None."""
        return next((r for r in self.results if r.method == method), None)

    def all(self, method: str) -> list[Any]:
        return [r for r in self.results if r.method == method]

    @property
    def dmarc(self) -> Any | None:
        return self.get("dmarc")

    @property
    def dkim(self) -> list[Any]:
        return self.all("dkim")

    @property
    def spf(self) -> Any | None:
        return self.get("spf")

    @property
    def arc(self) -> Any | None:
        return self.get("arc")


def trusted_headers(request: EmailRequest, ids: set[str], hops: int) -> tuple[list, list[str]]:
    """The parsed headers of our MTA, topmost first, and why others were ignored."""
    trusted: list[Any] = []
    ignored: list[str] = []
    received = 0
    for name, value in request.message.raw_items():
        lname = name.lower()
        if lname == "received":
            received += 1
            continue
        if lname != "authentication-results" or not isinstance(value, str):
            continue
        found = authserv_id(value)
        if found not in ids:
            continue
        if received > hops:
            ignored.append(
                f"Authentication-Results of {found} below Received header {received}: "
                f"it was in the message on arrival (MAIL_TRUSTED_HOPS = {hops})"
            )
            continue
        try:
            trusted.append(parse_header(value))
        except Exception as exc:  # authres raises its own SyntaxError and others
            ignored.append(f"Authentication-Results of {found} unreadable: {exc}")
    return trusted, ignored


@functools.cache
def _public_suffixes():
    from publicsuffix2 import PublicSuffixList

    return PublicSuffixList()


def organizational_domain(domain: str) -> str:
    """RFC 7489's organizational domain, from the public suffix list when installed."""
    domain = domain.lower().rstrip(".")
    try:
        return _public_suffixes().get_public_suffix(domain) or domain
    except ImportError:
        return domain


def aligned(signing_domain: str, from_domain: str) -> bool:
    """DMARC's relaxed alignment: the same organizational domain."""
    signing_domain = signing_domain.lower().rstrip(".")
    if not signing_domain:
        return False
    if signing_domain == from_domain:
        return True
    related = from_domain.endswith("." + signing_domain) or signing_domain.endswith(
        "." + from_domain
    )
    if not related:
        return False
    return organizational_domain(signing_domain) == organizational_domain(from_domain)


def judge(auth: Authentication, from_domain: str) -> tuple[bool, str]:
    """Whether the results vouch for ``from_domain``, and why, in words."""
    if not auth.results:
        return False, "no trusted authentication results"
    dmarc = next(
        (
            r
            for r in auth.all("dmarc")
            if (getattr(r, "header_from", None) or from_domain).lower() == from_domain
        ),
        None,
    )
    if dmarc is not None and dmarc.result != "none":
        if dmarc.result == "pass":
            return True, f"DMARC pass for {from_domain}"
        return False, f"DMARC {dmarc.result} for {from_domain}"
    for dkim in auth.all("dkim"):
        domain = (getattr(dkim, "header_d", None) or "").lower()
        if dkim.result == "pass" and aligned(domain, from_domain):
            no_record = "no DMARC record" if dmarc is not None else "no DMARC result"
            return True, f"DKIM pass for {domain}, aligned with {from_domain} ({no_record})"
    if dmarc is not None:
        return False, f"no DMARC record for {from_domain} and no aligned DKIM signature passes"
    return False, f"no DMARC result for {from_domain} and no aligned DKIM signature passes"


def authenticate(request: EmailRequest) -> Authentication:
    """Build ``request.authentication``."""
    from .conf import settings

    ids = {i.lower() for i in settings.MAIL_AUTHSERV_IDS}
    headers, ignored = trusted_headers(request, ids, settings.MAIL_TRUSTED_HOPS)
    auth = Authentication(
        results=[r for h in headers for r in h.results], headers=headers, ignored=ignored
    )
    if settings.MAIL_VERIFY_SENDERS and not (auth.get("dmarc") or auth.get("dkim")):
        from .verify import verify_message

        header = verify_message(request.raw)
        auth.headers.append(header)
        auth.results.extend(header.results)
    addresses = request.addresses("From")
    if len(addresses) != 1 or not addresses[0].domain:
        auth.reason = "no From address" if not addresses else "not one From address"
        return auth
    auth.from_domain = addresses[0].domain.lower().rstrip(".")
    auth.sender_verified, auth.reason = judge(auth, auth.from_domain)
    if not auth.results and not ids and not settings.MAIL_VERIFY_SENDERS:
        auth.reason += " (MAIL_AUTHSERV_IDS is empty and MAIL_VERIFY_SENDERS off)"
    return auth
