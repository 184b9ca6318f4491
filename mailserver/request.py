"""
EmailRequest: one message, for one recipient, as a mail view sees it.

The exact bytes are kept (``request.raw``): a view that archives, forwards or
checks a signature needs them, not a re-serialisation. Everything else is
derived from them with the standard library's ``email`` package and
``policy.default``, and made forgiving: real mail has lying charsets and
broken headers, and a view should get text, not an exception.
"""

from __future__ import annotations

import functools
import re
from email.feedparser import BytesFeedParser
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage, Message
from email.policy import EmailPolicy
from email.utils import getaddresses, parsedate_to_datetime

from django.core.files.uploadedfile import UploadedFile
from django.utils.datastructures import MultiValueDict

from .addresses import Address, parse
from .envelope import Envelope


class _Policy(EmailPolicy):
    """
    policy.default, but a header value is parsed into its header object once:
    the parser itself asks for Content-Type four times per part, and each
    time policy.default parses it anew, which made parsing ten times slower
    than compat32's. Header objects are immutable, so the same value can be
    shared between messages; a bounded cache keeps the common ones
    ("text/plain; charset=utf-8") across messages in a long-running server.
    """

    def header_source_parse(self, sourcelines):
        name, value = super().header_source_parse(sourcelines)
        value = _SourceValue(value)
        # The limits count physical lines as they came, name and all.
        value.longest_line = max(len(line.rstrip("\r\n")) for line in sourcelines)
        return name, value

    def header_fetch_parse(self, name, value):
        if hasattr(value, "name"):
            return value
        try:
            if len(value) > 1000:
                return super().header_fetch_parse(name, value)
            return _fetch_header(self, name, str(value))
        except Exception:
            # A value policy.default cannot make a header object of (an
            # unknown codec in an RFC 2231 parameter, comments nested a
            # thousand deep) is given as text, as compat32 would: the
            # Message methods still work on it, and nothing raises.
            return "".join(str(value).splitlines())


class _SourceValue(str):
    """A header value as the parser stored it, with the length of its longest line."""

    longest_line = 0


@functools.lru_cache(maxsize=1024)
def _fetch_header(policy_, name, value):
    return EmailPolicy.header_fetch_parse(policy_, name, value)


POLICY = _Policy()


PARSE_CHUNK = 1 << 16


def iter_chunks(raw, size: int = PARSE_CHUNK):
    """
    The message in pieces: ``raw`` is bytes, or a binary file (the pipe
    spools a large message to disk rather than hold it twice).
    """
    if isinstance(raw, (bytes, bytearray, memoryview)):
        view = memoryview(raw)
        for start in range(0, len(view), size):
            yield view[start : start + size].tobytes()
    else:
        raw.seek(0)
        while chunk := raw.read(size):
            yield chunk


def message_size(raw) -> int:
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return len(raw)
    raw.seek(0, 2)
    return raw.tell()


def is_blank(raw) -> bool:
    return not any(chunk.strip() for chunk in iter_chunks(raw))


def parse_message(raw, chunk_size: int = PARSE_CHUNK) -> EmailMessage:
    """
    Parse ``raw`` (bytes or a binary file) a piece at a time: the parser then
    never holds a decoded copy of the whole message, only its own lines.
    """
    parser = BytesFeedParser(policy=POLICY)
    for chunk in iter_chunks(raw, chunk_size):
        parser.feed(chunk)
    return parser.close()


def decode_payload(part: Message) -> bytes:
    """
    A part's content, its transfer encoding undone. Base64, the encoding of
    nearly every large attachment, is decoded straight from the parsed text:
    the email package first copies it as bytes, splits it into lines and
    joins them again, which holds a 20 MB attachment in memory four times.
    """
    if str(part.get("Content-Transfer-Encoding", "")).strip().lower() != "base64":
        return part.get_payload(decode=True) or b""
    try:
        payload = part.get_payload()
    except Exception:  # 8-bit junk with a charset no codec can decode
        payload = None
    if isinstance(payload, str):
        import binascii

        try:
            # Non-strict: line breaks and other non-alphabet characters are skipped.
            return binascii.a2b_base64(payload)
        except (binascii.Error, ValueError):
            pass  # Bad padding, 8-bit junk: the email package's lenient decoder.
    return part.get_payload(decode=True) or b""


def decode_text(part: Message) -> str:
    """A text part's content as str, whatever its charset claims."""
    payload = decode_payload(part)
    if isinstance(payload, str):
        return payload
    for charset in (part.get_content_charset(), "utf-8"):
        if not charset:
            continue
        try:
            return payload.decode(charset, errors="replace" if charset != "utf-8" else "strict")
        except (LookupError, UnicodeError, ValueError):
            # Unknown, or a codec that is no charset ("undefined", "idna").
            continue
    # Every byte decodes in Latin-1: better a few wrong letters than no text.
    return payload.decode("latin-1")


_MESSAGE_ID = re.compile(r"<[^<>\s]+>")


def message_ids(value: str | None) -> list[str]:
    """
    The ``<...>`` tokens of a Message-ID, References or In-Reply-To value:
    whatever else a hostile header holds cannot reach a reply's headers.
    """
    return _MESSAGE_ID.findall(value or "")


def header_values(message: Message, name: str) -> list:
    """
    Every value of a header: the header objects of policy.default; or the
    raw text, decoded from UTF-8 (RFC 6532), when the value holds 8-bit
    bytes, which policy.default leaves undecoded in addresses, or when it
    cannot build a header object from a hostile value.
    """
    raw = [value for key, value in message.raw_items() if key.lower() == name.lower()]
    if not any(_has_raw_bytes(str(value)) for value in raw):
        try:
            return message.get_all(name, [])
        except Exception:
            pass
    return [_utf8(str(value)) for value in raw]


def _has_raw_bytes(text: str) -> bool:
    # The parser keeps bytes it cannot decode as lone surrogates.
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _utf8(text: str) -> str:
    """Raw 8-bit header bytes as UTF-8 (RFC 6532), else Latin-1."""
    if not _has_raw_bytes(text):
        return text
    data = text.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def header_text(message: Message, name: str) -> str | None:
    """A header as one line of text, or None; a malformed one does not raise."""
    values = header_values(message, name)
    if not values:
        return None
    value = values[0]
    # Raw text still holds its encoded words; header objects are decoded.
    text = _decoded(value) if type(value) is str else str(value)
    return " ".join(text.split())


def _getaddresses(value: str) -> list[tuple[str, str]]:
    """email.utils.getaddresses, for text policy.default gave up on; never raises."""
    try:
        return getaddresses([_quote_encoded_words(value)])
    except Exception:  # RecursionError on comments nested deep, among others
        return []


_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def _quote_encoded_words(text: str) -> str:
    """
    Encoded words decoded into quoted strings, before an address list is
    split: what they hide (a comma, a colon, an @) then stays in the display
    name it came in, instead of making addresses of its own.
    """

    def quoted(match):
        word = " ".join(_decoded(match.group()).split())
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return _ENCODED_WORD.sub(quoted, text)


def _decoded(text: str) -> str:
    """RFC 2047 encoded words decoded, whatever charset they claim, in any text."""
    from email.header import decode_header

    try:
        chunks = decode_header(text)
    except Exception:
        return text
    words = []
    for data, charset in chunks:
        if isinstance(data, str):
            words.append(data)
        elif charset is None or charset == "unknown-8bit":
            # What was not encoded comes back as the text it was.
            words.append(data.decode("raw-unicode-escape", "replace"))
        else:
            try:
                words.append(data.decode(charset, "replace"))
            except (LookupError, UnicodeError, ValueError):
                words.append(data.decode("utf-8", "replace"))
    return "".join(words)


def attachment_name(part: Message) -> str:
    """
    A part's file name, safe to show and to store: no directory, nothing
    unprintable (line breaks, NUL, direction overrides), as Django does for
    uploaded files. A name the email package cannot decode is dropped.
    """
    try:
        name = part.get_filename() or ""
    except Exception:
        return ""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(ch for ch in name if ch.isprintable()).strip()


class Attachment(UploadedFile):
    """
    A MIME part offered as a Django ``UploadedFile``, so that it can go
    straight into a ``FileField``. Its content is decoded when first read,
    not before: a view that ignores a 20 MB attachment never pays for it.
    ``content_id`` is set for inline parts.
    """

    def __init__(self, part: Message, index: int):
        self._part = part
        self._file = None
        super().__init__(
            file=None,
            name=attachment_name(part) or f"part-{index}",
            content_type=part.get_content_type(),
            size=None,
            charset=part.get_content_charset(),
        )
        self.content_id = (part.get("Content-ID") or "").strip("<> ") or None
        self.disposition = part.get_content_disposition()

    @property
    def file(self):
        if self._file is None:
            from io import BytesIO

            content = decode_payload(self._part)
            self._size = len(content)
            self._file = BytesIO(content)  # shares the bytes until written to
        return self._file

    @file.setter
    def file(self, value):
        self._file = value

    @property
    def size(self) -> int:
        self.file  # noqa: B018 - decodes, and so learns the size
        return self._size

    @size.setter
    def size(self, value):
        pass  # Known once decoded.

    def open(self, mode=None):
        self.file.seek(0)
        return self

    def close(self):
        pass  # In memory: nothing to release, and reading it again must work.


class EmailRequest:
    """
    The request a mail view receives. ``request['From']`` and the
    ``get_*()`` methods are the original API; the properties are the
    conveniences of a modern inbound-mail API.
    """

    def __init__(self, raw, envelope: Envelope | None = None, message=None):
        self._raw = raw
        self.message: EmailMessage = message if message is not None else parse_message(raw)
        envelope = envelope or Envelope()
        if not envelope.recipient:
            envelope = envelope.for_recipient(self._recipient_from_headers())
        self.envelope = envelope
        self.address: Address = parse(envelope.recipient)
        self.resolver_match = None

    def _recipient_from_headers(self) -> str:
        from .conf import settings

        for name in settings.MAIL_RECIPIENT_HEADERS:
            value = header_text(self.message, name)
            if value:
                addresses = _getaddresses(value)
                if addresses and addresses[0][1]:
                    return addresses[0][1]
        return ""

    def __repr__(self) -> str:
        return (
            f"<EmailRequest from={self.envelope.sender!r} to={self.envelope.recipient!r} "
            f"subject={self.subject!r}>"
        )

    @property
    def raw(self) -> bytes:
        """The message exactly as it came, read from the spool when first asked for."""
        if not isinstance(self._raw, bytes):
            self._raw = b"".join(iter_chunks(self._raw))
        return self._raw

    # The original API ---------------------------------------------------

    def __getitem__(self, name: str) -> str | None:
        return header_text(self.message, name)

    def __contains__(self, name: str) -> bool:
        return name in self.message

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self[name]
        return default if value is None else value

    def get_all(self, name: str) -> list[str]:
        return [" ".join(str(v).split()) for v in header_values(self.message, name)]

    def get_recipient_address(self) -> str:
        """The envelope recipient, as the mail server gave it."""
        return self.envelope.recipient

    def get_recipient_display(self) -> str:
        """
        The recipient as the sender addressed it (``Help Desk <help@...>``),
        found in To or Cc; else the bare envelope address.
        """
        wanted = self.envelope.recipient.lower()
        for address in self.addresses("To") + self.addresses("Cc"):
            if address.addr_spec.lower() == wanted and address.display_name:
                return str(address)
        return self.envelope.recipient

    def get_body(self) -> str:
        """The text of the message: its plain part, else its HTML part."""
        return self.text if self.text is not None else (self.html or "")

    # Envelope -----------------------------------------------------------

    @property
    def sender(self) -> str | None:
        return self.envelope.sender

    @property
    def recipient(self) -> str:
        return self.envelope.recipient

    @property
    def subaddress(self) -> str:
        """The tag of ``ticket+42@...``: ``"42"``."""
        return self.address.subaddress

    @property
    def is_bounce(self) -> bool:
        """
        A delivery notification: sent with the null sender, as RFC 5321
        wants them sent, or shaped as an RFC 3464 report.
        """
        return self.envelope.sender == "" or self.dsn is not None

    @functools.cached_property
    def dsn(self):
        """The parsed delivery status notification (mailserver.dsn.DeliveryReport), or None."""
        from .dsn import parse_report

        return parse_report(self.message)

    # Headers ------------------------------------------------------------

    def addresses(self, name: str) -> list[HeaderAddress]:
        """Every address in the named headers, parsed; unparsable ones are skipped."""
        result = []
        for value in header_values(self.message, name):
            try:
                # An unparsable address comes back empty ("<>"): leave it out.
                found = [a for a in value.addresses if a.username]
            except Exception:
                found = []
                for display, addr in _getaddresses(str(value)):
                    if "@" in addr:
                        user, _, domain = addr.rpartition("@")
                        try:
                            display = " ".join(_decoded(display).split())
                            found.append(HeaderAddress(display, user, domain))
                        except Exception:
                            continue
            for address in found:
                # An encoded display name can decode to a line break: one
                # line it is, so that it cannot forge a header in a reply.
                display = " ".join(address.display_name.split())
                if display != address.display_name:
                    address = HeaderAddress(display, address.username, address.domain)
                result.append(address)
        return result

    @property
    def from_address(self) -> HeaderAddress | None:
        found = self.addresses("From")
        return found[0] if found else None

    @property
    def from_email(self) -> str:
        address = self.from_address
        return address.addr_spec if address else ""

    @property
    def to(self) -> list[str]:
        return [a.addr_spec for a in self.addresses("To")]

    @property
    def cc(self) -> list[str]:
        return [a.addr_spec for a in self.addresses("Cc")]

    @property
    def reply_to(self) -> list[str]:
        return [a.addr_spec for a in self.addresses("Reply-To")]

    @property
    def subject(self) -> str:
        return self["Subject"] or ""

    @property
    def message_id(self) -> str:
        """The Message-ID as ``<...>``, or "" when there is none worth the name."""
        ids = message_ids(self["Message-ID"])
        return ids[0] if ids else ""

    @property
    def references(self) -> list[str]:
        """The thread this message belongs to: References, else In-Reply-To."""
        return message_ids(self["References"]) or message_ids(self["In-Reply-To"])

    @property
    def date(self):
        """The Date header as an aware datetime, or None when absent or invalid."""
        value = self["Date"]
        if not value:
            return None
        try:
            return parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None

    # Bodies and files -----------------------------------------------------

    def _body_part(self, subtype: str) -> Message | None:
        try:
            return self.message.get_body(preferencelist=(subtype,))
        except Exception:
            return None

    @functools.cached_property
    def text(self) -> str | None:
        part = self._body_part("plain")
        return decode_text(part) if part is not None else None

    @functools.cached_property
    def html(self) -> str | None:
        part = self._body_part("html")
        return decode_text(part) if part is not None else None

    def _iter_file_parts(self):
        bodies = {id(self._body_part("plain")), id(self._body_part("html"))}
        for part in self.message.walk():
            if part.is_multipart() or id(part) in bodies:
                continue
            if part is self.message and part.get_content_maintype() == "text":
                continue
            yield part

    @functools.cached_property
    def attachments(self) -> list[Attachment]:
        """Every part that is not a body, decoded when first asked for."""
        return [Attachment(part, i) for i, part in enumerate(self._iter_file_parts(), 1)]

    @property
    def inline(self) -> list[Attachment]:
        """The parts shown within the HTML body, referred to by Content-ID."""
        return [a for a in self.attachments if a.disposition == "inline" or a.content_id]

    @functools.cached_property
    def FILES(self) -> MultiValueDict:  # noqa: N802 - Django's name
        """The attachments by file name, as ``request.FILES`` is for a form."""
        files = MultiValueDict()
        for attachment in self.attachments:
            files.appendlist(attachment.name, attachment)
        return files
