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


# Only ASCII blanks: str.strip() would also take a trailing NEL or U+2029,
# which syntax_error() must see to refuse.
_BLANKS = " \t\r\n"


def strip(address: str) -> str:
    """Remove what surrounds an envelope address: blanks and angle brackets."""
    address = address.strip(_BLANKS)
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1].strip(_BLANKS)
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


# RFC 5321, section 4.5.3.1, in octets; RFC 6531 keeps them for UTF-8
# addresses, counted in UTF-8.
MAX_LOCAL_PART = 64
MAX_DOMAIN = 255
MAX_LABEL = 63  # RFC 1035
MAX_PATH = 256  # the address with its angle brackets

# Characters no address may hold, by Unicode category: they end a line for
# some reader (NEL, U+2028), reorder what a person sees (bidi overrides) or
# hide (zero-width and other format characters). A space is allowed only
# inside a quoted local part, which the grammar below checks.
_REFUSED_CATEGORIES = {
    "Cc": "control character",
    "Cf": "format character",
    "Cs": "surrogate (not UTF-8)",
    "Zl": "line separator",
    "Zp": "paragraph separator",
    "Zs": "space character",
}


def _refused_character(address: str) -> str | None:
    if address.isascii():
        # The common case; only C0 controls and DEL are refused in ASCII.
        bad = next((ch for ch in address if ch < " " or ch == "\x7f"), None)
    else:
        bad = next(
            (ch for ch in address if ch != " " and unicodedata.category(ch) in _REFUSED_CATEGORIES),
            None,
        )
    if bad is None:
        return None
    return f"{_REFUSED_CATEGORIES[unicodedata.category(bad)]} U+{ord(bad):04X} in address"


def a_label_length(label: str) -> int:
    """
    The octets a domain label takes in DNS, where an internationalised label
    goes as its A-label (``xn--`` and punycode): that, not its UTF-8
    spelling, is what RFC 1035's 63 octets limit.
    """
    if label.isascii():
        return len(label)
    label = unicodedata.normalize("NFC", label.lower())
    return len("xn--") + len(label.encode("punycode"))


def syntax_error(address: str) -> str | None:
    """
    What is wrong with an envelope address (RFC 5321 Mailbox, RFC 6531
    UTF-8 allowed), or None. An address without a domain passes: tests and
    hand-made runs use bare local parts, and an MTA never sends one.

    Lengths follow RFC 5321: the local part and the whole path in the UTF-8
    octets the sender transmitted; each domain label, and the domain, in the
    octets of their DNS form (A-labels), which is what those limits protect.
    """
    address = strip(address)
    if not address:
        return "empty address"
    if error := _refused_character(address):
        return error
    local, domain = split(address)
    if not (_DOT_STRING.fullmatch(local) or _QUOTED_STRING.fullmatch(local)):
        return "invalid local part"
    if (size := len(local.encode("utf-8"))) > MAX_LOCAL_PART:
        return f"local part of {size} octets is longer than {MAX_LOCAL_PART}"
    if "@" in address and not _ADDRESS_LITERAL.fullmatch(domain):
        # One trailing dot names the root ("example.com."); two leave an empty label.
        labels = (domain[:-1] if domain.endswith(".") else domain).split(".")
        if not all(_LABEL.fullmatch(label) for label in labels):
            return "invalid domain"
        sizes = [a_label_length(label) for label in labels]
        if (size := max(sizes)) > MAX_LABEL:
            return f"domain label of {size} octets is longer than {MAX_LABEL}"
        if (size := sum(sizes) + len(sizes) - 1) > MAX_DOMAIN:
            return f"domain of {size} octets is longer than {MAX_DOMAIN}"
    if (size := len(address.encode("utf-8"))) > MAX_PATH - 2:
        return f"address of {size} octets is longer than {MAX_PATH - 2}"
    return None


def check_sender(address: str | None) -> None:
    """Refuse an envelope sender that is no address (5.1.7); the null sender passes."""
    from .exceptions import BadSenderAddress

    if address and strip(address) and (error := syntax_error(address)):
        raise BadSenderAddress(f"<{address}>: bad sender address syntax ({error})")


def check_recipient(address: str) -> None:
    """Refuse an envelope recipient that is no address (5.1.3)."""
    from .exceptions import BadRecipientAddress

    if error := syntax_error(address):
        raise BadRecipientAddress(f"<{address}>: bad recipient address syntax ({error})")
