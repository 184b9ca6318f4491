"""
MIME helpers: parsing, decoding and reading headers of real, often broken,
mail with the standard library's ``email`` package.

They live apart from :mod:`mailserver.request` because more than the request
needs them: the dispatch core parses and measures the message before there
is a request, the DSN parser reads headers and parts of a report, the
limits read what the parser recorded. Every helper is forgiving in the same
way: lying charsets, undecodable words and malformed headers give text (or
nothing), never an exception, because a view should get the message and a
hostile one must not crash the app.
"""

from __future__ import annotations

import functools
import re
from email.feedparser import BytesFeedParser
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage, Message
from email.policy import EmailPolicy
from email.utils import getaddresses

# Parsing -----------------------------------------------------------------


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
    message = parser.close()
    assert isinstance(message, EmailMessage)  # POLICY's message_factory
    return message


# Content -----------------------------------------------------------------


def decode_payload(part: Message) -> bytes:
    """
    A part's content, its transfer encoding undone. Base64, the encoding of
    nearly every large attachment, is decoded straight from the parsed text:
    the email package first copies it as bytes, splits it into lines and
    joins them again, which holds a 20 MB attachment in memory four times.
    """
    if str(part.get("Content-Transfer-Encoding", "")).strip().lower() != "base64":
        return _decoded_payload(part)
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
    return _decoded_payload(part)


def _decoded_payload(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    # None for a multipart; bytes for any other part.
    return payload if isinstance(payload, bytes) else b""


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


# Headers -----------------------------------------------------------------

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
    text = decode_words(value) if type(value) is str else str(value)
    return " ".join(text.split())


def split_addresses(value: str) -> list[tuple[str, str]]:
    """email.utils.getaddresses, for text policy.default gave up on; never raises."""
    try:
        return getaddresses([_quote_encoded_words(value)])
    except Exception:  # RecursionError on comments nested deep, among others
        return []


def header_addresses(message: Message, name: str) -> list[HeaderAddress]:
    """
    Every address in the named headers, parsed; unparsable ones are skipped.
    A display name is one line: an encoded one can decode to a line break,
    which must not forge a header in a reply.
    """
    result = []
    for value in header_values(message, name):
        try:
            # An unparsable address comes back empty ("<>"): leave it out.
            found = [a for a in value.addresses if a.username]
        except Exception:
            found = []
            for display, addr in split_addresses(str(value)):
                if "@" in addr:
                    user, _, domain = addr.rpartition("@")
                    try:
                        display = " ".join(decode_words(display).split())
                        found.append(HeaderAddress(display, user, domain))
                    except Exception:
                        continue
        for address in found:
            display = " ".join(address.display_name.split())
            if display != address.display_name:
                address = HeaderAddress(display, address.username, address.domain)
            result.append(address)
    return result


_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def _quote_encoded_words(text: str) -> str:
    """
    Encoded words decoded into quoted strings, before an address list is
    split: what they hide (a comma, a colon, an @) then stays in the display
    name it came in, instead of making addresses of its own.
    """

    def quoted(match):
        word = " ".join(decode_words(match.group()).split())
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return _ENCODED_WORD.sub(quoted, text)


def decode_words(text: str) -> str:
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
