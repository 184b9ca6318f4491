"""
Hostile messages too big or too repetitive to commit: built at test time.

Each function returns the bytes of one message for inspect@example.com.
Sizes and counts are exact, so that a test can sit on either side of a
limit: ``header_line(16384)`` has one physical header line of exactly 16384
bytes (without its line end), ``nested_multipart(25)`` has its deepest part
at depth 25 (the top-level message being depth 0), ``many_parts(500)`` has
500 parts counting the top-level container.
"""

from __future__ import annotations

import base64
import random

HEAD = b"From: Ann Ortiz <ann@example.org>\nTo: inspect@example.com\n"


def _message(subject: str, rest: bytes) -> bytes:
    return HEAD + b"Subject: " + subject.encode() + b"\n" + rest


def body_line(size: int) -> bytes:
    """A body that is one line of ``size`` bytes, with no line end at all."""
    return _message(f"One line of {size} bytes", b"\n" + b"y" * size)


def header_line(length: int, name: str = "X-Long", separator: bytes = b": ") -> bytes:
    """One header line of exactly ``length`` bytes: ``Name: xxx...``."""
    prefix = name.encode() + separator
    if length < len(prefix):
        raise ValueError("too short for the header name")
    line = prefix + b"x" * (length - len(prefix))
    return _message(f"A header line of {length} bytes", line + b"\n\nbody\n")


def folded_line(length: int, first: bool = False, crlf: bool = False) -> bytes:
    """
    A header folded over two physical lines, one of which (the first, or the
    continuation) is exactly ``length`` bytes long, its line end excluded.
    With ``crlf``, every line of the message ends in CR LF.
    """
    if first:
        lines = b"X-Long: " + b"x" * (length - 8) + b"\n short"
    else:
        lines = b"X-Long: short\n " + b"x" * (length - 1)
    raw = _message(f"A folded header line of {length} bytes", lines + b"\n\nbody\n")
    return raw.replace(b"\n", b"\r\n") if crlf else raw


def long_field(length: int) -> bytes:
    """
    One header field of exactly ``length`` bytes (its last line end
    excluded), folded into lines of at most 78 bytes.
    """
    field = b"X-Long: x"
    while len(field) < length:
        field += b"\n " + b"y" * min(76, length - len(field) - 2)
    if len(field) != length:
        raise ValueError("no such length with this folding")
    return _message(f"A header field of {length} bytes", field + b"\n\nbody\n")


def big_section(fields: int, size: int = 1000) -> bytes:
    """A header section of ``fields`` extra fields of ``size`` bytes each, folded."""
    value = b"\n ".join([b"z" * 70] * (size // 72))
    padding = b"".join(b"X-Pad-%04d: " % i + value + b"\n" for i in range(fields))
    return _message(f"{fields} fields of about {size} bytes", padding + b"\nbody\n")


def header_line_in_part(length: int) -> bytes:
    """The same long line, in the header of a MIME part instead of the message."""
    prefix = b"X-Long: "
    line = prefix + b"x" * (length - len(prefix))
    return _message(
        f"A part header line of {length} bytes",
        b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="p"\n\n'
        b"--p\nContent-Type: text/plain\n" + line + b"\n\nthe part\n--p--\n",
    )


def many_headers(count: int) -> bytes:
    """A top-level header section of exactly ``count`` fields."""
    filler = count - 3  # From, To and Subject are three of them
    if filler < 0:
        raise ValueError("at least 3 fields")
    fields = b"".join(b"X-Trace-%d: hop %d\n" % (i, i) for i in range(filler))
    return _message(f"{count} header fields", fields + b"\nbody\n")


def many_headers_in_part(count: int) -> bytes:
    """A MIME part whose own header section has ``count`` fields."""
    fields = b"".join(b"X-Part-%d: %d\n" % (i, i) for i in range(count - 1))
    return _message(
        f"A part with {count} header fields",
        b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="p"\n\n'
        b"--p\nContent-Type: text/plain\n" + fields + b"\nthe part\n--p--\n",
    )


def nested_multipart(depth: int) -> bytes:
    """multipart/mixed inside multipart/mixed..., the deepest part at ``depth``."""
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="n%d"\n\n--n%d\n' % (i, i) for i in range(depth)
    )
    closing = b"".join(b"\n--n%d--\n" % i for i in reversed(range(depth)))
    return _message(
        f"Parts nested {depth} deep",
        b"MIME-Version: 1.0\n" + opening + b"Content-Type: text/plain\n\nthe leaf" + closing,
    )


def nested_rfc822(depth: int) -> bytes:
    """A message attached to a message attached to..., ``depth`` levels down."""
    inner = b"Subject: the innermost\n\nthe leaf\n"
    for level in reversed(range(1, depth)):
        inner = b"Subject: level %d\nContent-Type: message/rfc822\n\n" % level + inner
    if depth == 0:
        return _message("Nothing attached", b"\nthe leaf\n")
    return _message(
        f"Messages nested {depth} deep",
        b"MIME-Version: 1.0\nContent-Type: message/rfc822\n\n" + inner,
    )


def many_parts(total: int) -> bytes:
    """One multipart/mixed holding ``total - 1`` small text parts."""
    parts = b"".join(b"--m\nContent-Type: text/plain\n\npart %d\n" % i for i in range(total - 1))
    return _message(
        f"{total} MIME parts",
        b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="m"\n\n' + parts + b"--m--\n",
    )


def empty_parts(count: int) -> bytes:
    """
    ``count`` empty parts, six bytes each: the most parts a byte of message
    can buy, well past MAIL_MAX_MIME_PARTS.
    """
    return _message(
        f"{count} empty parts",
        b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="e"\n\n'
        + b"--e\n\n" * count
        + b"--e--\n",
    )


def attachment_bytes(size: int, seed: int = 25) -> bytes:
    return random.Random(seed).randbytes(size)


def attachment(size: int, seed: int = 25) -> bytes:
    """A short text and one binary attachment of ``size`` bytes, in Base64."""
    data = base64.encodebytes(attachment_bytes(size, seed))  # 76-column lines
    return _message(
        f"An attachment of {size} bytes",
        b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="a"\n\n'
        b"--a\nContent-Type: text/plain; charset=utf-8\n\nThe file is attached.\n"
        b'--a\nContent-Type: application/octet-stream; name="big.bin"\n'
        b'Content-Disposition: attachment; filename="big.bin"\n'
        b"Content-Transfer-Encoding: base64\n\n" + data + b"--a--\n",
    )


def sized(total: int) -> bytes:
    """A plain message of exactly ``total`` bytes (at least 100)."""
    start = _message(f"Exactly {total} bytes", b"\n")
    if total < len(start) + 1:
        raise ValueError("too small")
    body = (b"z" * 71 + b"\n") * ((total - len(start)) // 72)
    body += b"z" * (total - len(start) - len(body))
    message = start + body
    assert len(message) == total
    return message


def nested_comments(depth: int, header: str = "From") -> bytes:
    """An address header opening ``depth`` nested comments: ``(((((...``."""
    value = b"(" * depth + b"ann@example.org" + b")" * depth
    return HEAD.replace(f"{header}: ".encode(), b"X-Was: ", 1) + (
        f"{header}: ".encode() + value + b"\nSubject: comments nested deep\n\nbody\n"
    )


def folded_header(size: int, header: str = "To") -> bytes:
    """
    One address header of about ``size`` bytes, folded into short lines:
    no physical line is long and the section has few fields.
    """
    line = b" user@example.net,\n"
    count = max(1, size // len(line))
    value = b"inspect@example.com,\n" + line * count + b" last@example.net\n"
    head = HEAD.replace(f"{header}: ".encode(), b"X-Was: ", 1)
    return head + f"{header}: ".encode() + value + b"Subject: a long folded header\n\nbody\n"
