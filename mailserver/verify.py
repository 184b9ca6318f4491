"""
In-process sender verification, for an MTA that adds no
Authentication-Results header: every DKIM signature checked with dkimpy
(not only the topmost, as a mailing list or a forwarder often adds its own
above the author's), and DMARC for the From domain with authheaders, fed
the signature aligned with it. DNS goes through :mod:`mailserver.dns`.

SPF is left out: it needs the connecting client's address, which only the
MTA knows first-hand. DMARC here can therefore pass only through DKIM,
which is what survives forwarding anyway.

The results come back as an authres header, as if an MTA named
``mailserver.in-process`` had written it, so that views read both kinds
alike through ``request.authentication``.
"""

from __future__ import annotations

import logging
from typing import Any

from .authresults import IN_PROCESS_ID, aligned

logger = logging.getLogger("mailserver.verify")


def _dkim_dnsfunc(failures: list[str]):
    """dkimpy's TXT lookup, noting failures: dkimpy turns them into a plain "fail"."""
    from . import dns

    def lookup(name: bytes, timeout: float = 5) -> bytes | None:
        try:
            records = dns.txt(name)
        except LookupError as exc:
            import dkim

            failures.append(str(exc))
            raise dkim.DnsTimeoutError(str(exc)) from exc
        return records[0].encode("utf-8") if records else None

    return lookup


def _dmarc_dnsfunc(name: str) -> str | None:
    from . import dns

    records = [r for r in dns.txt(name) if r.startswith("v=DMARC1")]
    # Two DMARC records count as none (RFC 7489, 6.6.3); authheaders sees one.
    return records[0] if len(records) == 1 else None


def dkim_results(raw: bytes) -> list[Any]:
    """One authres DKIM result per DKIM-Signature, topmost first."""
    import dkim
    from authres import DKIMAuthenticationResult

    checker = dkim.DKIM(raw, logger=logger)
    count = sum(1 for name, _ in checker.headers if name.lower() == b"dkim-signature")
    results = []
    for index in range(count):
        checker = dkim.DKIM(raw, logger=logger)
        failures: list[str] = []
        reason = None
        try:
            passed = checker.verify(idx=index, dnsfunc=_dkim_dnsfunc(failures))
            result = "pass" if passed else "fail"
        except dkim.DKIMException as exc:
            result, reason = ("permerror" if "key" in str(exc).lower() else "fail"), str(exc)
        if failures and result != "pass":
            result, reason = "temperror", failures[0]
        fields = getattr(checker, "signature_fields", None) or {}
        results.append(
            DKIMAuthenticationResult(
                result=result,
                reason=reason,
                header_d=fields.get(b"d", b"").decode("ascii", "replace") or None,
                header_i=fields.get(b"i", b"").decode("ascii", "replace") or None,
                header_s=fields.get(b"s", b"").decode("ascii", "replace") or None,
            )
        )
    return results


def dmarc_result(from_domain: str, dkim: list[Any]) -> Any:
    """authheaders' DMARC verdict for ``from_domain``, fed the best DKIM result."""
    from authheaders import dmarc_per_from
    from authheaders.dmarc_lookup import DMARCException
    from authres.dmarc import DMARCAuthenticationResult

    passing = [r for r in dkim if r.result == "pass"]
    best = next((r for r in passing if aligned(r.header_d or "", from_domain)), None)
    best = best or (passing[0] if passing else None)
    try:
        result, comment, _, policy = dmarc_per_from(
            from_domain, dkim_result=best, dnsfunc=_dmarc_dnsfunc
        )
    except DMARCException as exc:
        return DMARCAuthenticationResult(
            result="permerror", result_comment=str(exc), header_from=from_domain
        )
    except LookupError as exc:
        return DMARCAuthenticationResult(
            result="temperror", result_comment=str(exc), header_from=from_domain
        )
    return DMARCAuthenticationResult(
        result=result,
        result_comment=comment or None,
        header_from=from_domain,
        policy=policy or None,
    )


def verify_message(raw: bytes):
    """An authres header holding the DKIM and DMARC results for ``raw``."""
    from authres import AuthenticationResultsHeader

    from .mime import header_addresses, parse_message

    results = dkim_results(raw)
    froms = header_addresses(parse_message(raw), "From")
    if len(froms) == 1 and froms[0].domain:
        results.append(dmarc_result(froms[0].domain.lower().rstrip("."), results))
    return AuthenticationResultsHeader(authserv_id=IN_PROCESS_ID, results=results)
