"""
Envelope addresses, as the resolver sees them.

The MTA hands over an address more or less as the sender wrote it. Before it
is matched, it is normalised so that one mailbox has one spelling: brackets
and surrounding blanks go, the domain is lower-cased and shown in its Unicode
form (``xn--bcher-kva.example`` becomes ``bücher.example``), the local part is
kept as given (RFC 5321 leaves its case to the receiving system) unless
``MAIL_CASE_INSENSITIVE_LOCAL_PART`` is set, and a subaddress
(``ticket+42``) is split off.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# RFC 5321's Dot-string, with RFC 6531's UTF-8: a local part without quotes.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\x80-\U0010ffff-]+"
_DOT_STRING = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
# A Quoted-string: printable ASCII but quote and backslash, which are escaped.
_QTEXT = r"[\x20\x21\x23-\x5b\x5d-\x7e\x80-\U0010ffff]"
_QUOTED_STRING = re.compile(rf'"(?:{_QTEXT}|\\[\x20-\x7e])*"')
_LETTER = r"[A-Za-z0-9\x80-\U0010ffff]"
_LABEL = re.compile(rf"{_LETTER}(?:(?:{_LETTER}|-)*{_LETTER})?")
_ADDRESS_LITERAL = re.compile(r"\[[A-Za-z0-9:.]+\]")


@dataclass(frozen=True)
class Address:
    """A normalised recipient: ``local`` is the base local part, without its tag."""

    local: str
    domain: str
    subaddress: str = ""
    delimiter: str = ""

    def __str__(self) -> str:
        """The address the resolver matches: the base local part at the domain."""
        return f"{self.local}@{self.domain}" if self.domain else self.local

    @property
    def full(self) -> str:
        """The address with its subaddress, as it was written (normalised)."""
        local = self.local
        if self.subaddress or self.delimiter:
            local = f"{local}{self.delimiter}{self.subaddress}"
        return f"{local}@{self.domain}" if self.domain else local


def strip(address: str) -> str:
    """Remove what surrounds an envelope address: blanks and angle brackets."""
    address = address.strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1].strip()
    return address


def split(address: str) -> tuple[str, str]:
    """Split at the last ``@``, which a quoted local part may also contain."""
    local, at, domain = strip(address).rpartition("@")
    if not at:
        return domain, ""
    return local, domain


def normalize_domain(domain: str) -> str:
    domain = domain.strip().rstrip(".")
    labels = []
    for label in domain.split("."):
        if label[:4].lower() == "xn--":
            try:
                label = label.encode("ascii").decode("idna")
            except UnicodeError:
                pass  # Not valid punycode: keep it as given, it will not match.
        labels.append(label)
    return unicodedata.normalize("NFC", ".".join(labels)).lower()


def parse(
    address: str,
    *,
    delimiter: str | None = None,
    case_insensitive: bool | None = None,
) -> Address:
    """Normalise an envelope address; settings fill what is not given."""
    if delimiter is None or case_insensitive is None:
        from .conf import settings

        if delimiter is None:
            delimiter = settings.MAIL_SUBADDRESS_DELIMITER or ""
        if case_insensitive is None:
            case_insensitive = settings.MAIL_CASE_INSENSITIVE_LOCAL_PART
    local, domain = split(address)
    local = unicodedata.normalize("NFC", local)
    if case_insensitive:
        local = local.lower()
    base, sep, tag = local, "", ""
    # Postfix's recipient_delimiter may name several characters: the first
    # of them in the local part splits it. A quoted local part is left whole.
    if delimiter and not local.startswith('"'):
        at = next((i for i, ch in enumerate(local) if i and ch in delimiter), 0)
        if at:
            base, sep, tag = local[:at], local[at], local[at + 1 :]
    return Address(base, normalize_domain(domain), tag, sep)


def quote_local_part(local: str) -> str:
    """Put back the quotes an odd local part needs (Exim hands them over bare)."""
    if _DOT_STRING.fullmatch(local):
        return local
    return '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'


def syntax_error(address: str) -> str | None:
    """
    What is wrong with an envelope address (RFC 5321 Mailbox, RFC 6531
    UTF-8 allowed), or None. An address without a domain passes: tests and
    hand-made runs use bare local parts, and an MTA never sends one.
    """
    address = strip(address)
    if not address:
        return "empty address"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in address):
        return "control character in address"
    local, domain = split(address)
    if not (_DOT_STRING.fullmatch(local) or _QUOTED_STRING.fullmatch(local)):
        return "invalid local part"
    if "@" in address:
        if _ADDRESS_LITERAL.fullmatch(domain):
            return None
        # One trailing dot names the root ("example.com."); two leave an empty label.
        labels = (domain[:-1] if domain.endswith(".") else domain).split(".")
        if not all(_LABEL.fullmatch(label) for label in labels):
            return "invalid domain"
    return None
