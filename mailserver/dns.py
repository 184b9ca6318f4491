"""
TXT lookups for in-process sender verification (DKIM keys, DMARC records).

One function, :func:`txt`, answers every lookup; it goes to
``MAIL_DNS_RESOLVER`` when that names a callable (a dotted path or the
callable itself, taking a name and returning a list of TXT strings), else to
dnspython's resolver. Tests serve records from a dictionary through the
setting and never touch the network; a site may point it at its own
validating resolver.
"""

from __future__ import annotations

from collections.abc import Callable

from django.utils.module_loading import import_string

TxtResolver = Callable[[str], list[str]]


def dnspython_txt(name: str, timeout: float = 5) -> list[str]:
    """The TXT strings of ``name`` from dnspython's resolver; [] when there are none."""
    import dns.exception
    import dns.resolver

    try:
        answer = dns.resolver.resolve(name, "TXT", lifetime=timeout, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.DNSException as exc:
        raise LookupError(f"DNS lookup of {name} failed: {exc}") from exc
    return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]


def resolver() -> TxtResolver:
    from .conf import settings

    hook = settings.MAIL_DNS_RESOLVER
    if hook is None:
        return dnspython_txt
    return import_string(hook) if isinstance(hook, str) else hook


def txt(name: str | bytes) -> list[str]:
    """Every TXT string published at ``name`` (without its trailing dot)."""
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    return list(resolver()(name.rstrip(".")))
