"""
Hypothesis strategies for hostile messages and envelopes.

Messages are built as bytes, not with the email package, so that they can be
wrong in every way the package would refuse to write: header values with raw
CR, LF and NUL, 8-bit bytes, encoded words that decode to line breaks or
name charsets that do not exist, transfer encodings that lie, boundaries
that are missing, empty or never closed. Trees stay well inside the
structure limits (a handful of parts, a few levels): every non-empty message
with a valid envelope must be delivered.
"""

from __future__ import annotations

import base64
import quopri

from hypothesis import strategies as st

# -- bytes and text ---------------------------------------------------------------

HOSTILE_CHARS = [
    "\r", "\n", "\r\n", "\x00", "\t", "\x0b", "\x0c", "\x1b", "\x7f", "\u0085", "\u2028",
    "(", ")", "<", ">", "@", ",", ";", ":", '"', "\\", "[", "]", "=?", "?=", "?", "=",
    "é", "ß", "你", "\U0001f4e7", "\u202e", "\ufeff", " ", "  ",
]  # fmt: skip

CHARSETS = [
    "utf-8", "UTF-8", "iso-8859-1", "latin1", "us-ascii", "windows-1252", "koi8-r",
    "shift_jis", "gb2312", "utf-16", "utf-7", "x-unknown", "", "ütf", "7bit", "base64",
    "rot13", "utf-8 ", "x" * 100, "undefined", "idna", "utf-8\x00",
]  # fmt: skip

ENCODABLE = ["utf-8", "iso-8859-1", "utf-16", "koi8-r", "shift_jis"]

words = st.lists(
    st.one_of(
        st.sampled_from(HOSTILE_CHARS),
        st.characters(min_codepoint=32, max_codepoint=126),
        st.characters(blacklist_categories=("Cs",)),
    ),
    max_size=30,
).map("".join)


@st.composite
def raw_bytes(draw, max_size=60) -> bytes:
    """Bytes no charset vouches for: Latin-1, broken UTF-8, controls."""
    return draw(
        st.one_of(
            st.binary(max_size=max_size),
            words.map(lambda s: s.encode("utf-8", "surrogatepass")),
            words.map(lambda s: s.encode("latin-1", "replace")),
        )
    )


@st.composite
def encoded_word(draw) -> bytes:
    """An RFC 2047 encoded word, well-formed or not, possibly hiding a CR LF."""
    text = draw(words)
    charset = draw(st.sampled_from(CHARSETS + ["x-klingon"]))
    try:
        data = text.encode(charset if charset in ENCODABLE else "utf-8", "replace")
    except LookupError:
        data = text.encode("utf-8", "surrogatepass")
    kind = draw(st.sampled_from(["B", "Q", "b", "q", "X", ""]))
    if kind in "Bb" and kind:
        payload = base64.b64encode(data)
        if draw(st.booleans()):
            payload = payload.rstrip(b"=")  # padding lost
    elif kind in "Qq" and kind:
        payload = quopri.encodestring(data, header=True).replace(b"=\n", b"")
    else:
        payload = data
    if draw(st.integers(0, 9)) == 0:
        payload += b"=ZZ"
    end = b"?=" if draw(st.integers(0, 7)) else b""
    return b"=?" + charset.encode("utf-8", "replace") + b"?" + kind.encode() + b"?" + payload + end


@st.composite
def header_value(draw) -> bytes:
    chunks = draw(
        st.lists(
            st.one_of(
                words.map(lambda s: s.encode("utf-8", "surrogatepass")),
                raw_bytes(),
                encoded_word(),
                address_value(),
                st.sampled_from([b"\n ", b"\r\n\t", b"\n", b"\r", b"\x00", b": ", b"\n\n"]),
            ),
            max_size=6,
        )
    )
    return b"".join(chunks)


# -- addresses ---------------------------------------------------------------------

LOCALS = [
    "ann", "bo.lee", "first+tag", "o'brien", "x_y-z", "jörg", "检查", "андрей", "a" * 64,
    '"ann ortiz"', '"with@at"', '"back\\\\slash"', '""', "user%host", "!#$%&*/=?^`{|}~",
]  # fmt: skip
DOMAINS = [
    "example.org", "EXAMPLE.ORG", "example.org.", "bücher.example", "xn--bcher-kva.example",
    "例子.测试", "[192.0.2.1]", "[IPv6:2001:db8::1]", "sub.sub.example.net", "localhost",
]  # fmt: skip

valid_address = st.builds(
    lambda local, domain: f"{local}@{domain}", st.sampled_from(LOCALS), st.sampled_from(DOMAINS)
)


@st.composite
def address_value(draw) -> bytes:
    """An address-header value: display names, comments, groups, garbage."""

    def one():
        address = draw(valid_address)
        shape = draw(st.integers(0, 6))
        name = draw(words)
        if shape == 0:
            return address
        if shape == 1:
            return f"{name} <{address}>"
        if shape == 2:
            return f'"{name}" <{address}>'
        if shape == 3:
            return f"{address} ({name})"
        if shape == 4:
            return f"{name}: {address}, {draw(valid_address)};"
        if shape == 5:
            return f"<{address}"
        return name

    items = [one() for _ in range(draw(st.integers(1, 3)))]
    value = ", ".join(items).encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        value = draw(encoded_word()) + b" " + value
    return value


@st.composite
def invalid_address(draw, allow_nul: bool = True) -> str:
    """A valid address made invalid by one thing an MTA would never pass on."""
    local = draw(st.sampled_from(["inspect", "ann", "first.last"]))
    domain = draw(st.sampled_from(["example.com", "example.org"]))
    breakers = [" ", "\r\n", "\n", "\r", "\t", "@", "<", "(x)"]
    # Line ends for some readers, bidi controls, invisible and odd spaces.
    breakers += ["\x85", "\u2028", "\u2029", "\u202e", "\u2066", "\u200b", "\u00a0", "\x7f"]
    if allow_nul:
        breakers.append("\x00")
    kind = draw(st.integers(0, 3))
    if kind == 0:  # inside the local part
        cut = draw(st.integers(1, len(local) - 1))
        return f"{local[:cut]}{draw(st.sampled_from(breakers))}{local[cut:]}@{domain}"
    if kind == 1:  # inside the domain
        cut = draw(st.integers(1, len(domain) - 1))
        return f"{local}@{domain[:cut]}{draw(st.sampled_from(breakers + ['..']))}{domain[cut:]}"
    if kind == 2:
        return draw(
            st.sampled_from(
                [
                    f"{local}@",
                    f"@{domain}",
                    f".{local}@{domain}",
                    f"{local}.@{domain}",
                    f"{local}@{domain}..x",
                    f"{local}@-{domain}",
                    f'"{local}@{domain}',
                ]
            )
        )
    return f"{local}@{domain}@{domain}"


# -- MIME trees -------------------------------------------------------------------------

HEADER_NAMES = [
    "From", "To", "Cc", "Reply-To", "Sender", "Subject", "Message-ID", "In-Reply-To",
    "References", "Date", "MIME-Version", "Delivered-To", "Auto-Submitted", "Precedence",
    "List-Id", "Return-Path", "X-Mailer", "Received", "Comments",
]  # fmt: skip

header_name = st.one_of(
    st.sampled_from(HEADER_NAMES),
    st.sampled_from(HEADER_NAMES).map(str.upper),
    st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters=":"),
        min_size=1,
        max_size=20,
    ),
    st.sampled_from(["", " Subject", "Subject ", "Sub\x00ject", "Sübject", "From "]),
)


@st.composite
def headers(draw, min_size=0, max_size=8) -> bytes:
    fields = draw(
        st.lists(st.tuples(header_name, header_value()), min_size=min_size, max_size=max_size)
    )
    return b"".join(
        name.encode("utf-8", "surrogatepass") + b": " + value + b"\n" for name, value in fields
    )


CONTENT_TYPES = [
    "text/plain", "text/html", "application/octet-stream", "image/png", "application/pdf",
    "text/rfc822-headers", "message/delivery-status", "text", "/plain", "multipart/", ";;",
    "text/plain; format=flowed", "application/x-junk",
]  # fmt: skip
ENCODINGS = ["7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "gzip", ""]


@st.composite
def leaf(draw) -> bytes:
    ctype = draw(st.sampled_from(CONTENT_TYPES))
    charset = draw(st.sampled_from(CHARSETS))
    cte = draw(st.sampled_from(ENCODINGS))
    body = draw(raw_bytes(max_size=200))
    if cte == "base64" and draw(st.booleans()):
        body = base64.encodebytes(body)  # honest, for once
    elif cte == "quoted-printable" and draw(st.booleans()):
        body = quopri.encodestring(body)
    head = f'Content-Type: {ctype}; charset="{charset}"\n'.encode("utf-8", "surrogatepass")
    if cte:
        head += f"Content-Transfer-Encoding: {cte}\n".encode()
    if draw(st.booleans()):
        name = draw(words).encode("utf-8", "surrogatepass")
        disposition = draw(st.sampled_from([b"attachment", b"inline", b"junk"]))
        if draw(st.booleans()):
            head += b"Content-Disposition: " + disposition + b'; filename="' + name + b'"\n'
        else:
            head += b"Content-Disposition: " + disposition + b"; filename*=utf-8''"
            head += name.replace(b"%", b"%25").replace(b"\n", b"%0A").replace(b"\r", b"%0D")
            head += b"\n"
    if draw(st.integers(0, 4)) == 0:
        head += b"Content-ID: <" + draw(raw_bytes(max_size=20)) + b">\n"
    head += draw(headers(max_size=2))
    return head + b"\n" + body


@st.composite
def attached_message(draw, children) -> bytes:
    inner = draw(headers(max_size=4)) + draw(children)
    return b"Content-Type: message/rfc822\n\n" + inner


@st.composite
def multipart(draw, children) -> bytes:
    subtype = draw(st.sampled_from(["mixed", "alternative", "related", "report", "digest"]))
    boundary = draw(st.sampled_from(["b", "=_b_=", "", "a b", "x" * 70, "--", "part"]))
    parts = draw(st.lists(children, max_size=4))
    param = draw(st.sampled_from(["quoted", "bare", "none"]))
    if param == "quoted":
        head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\n'
    elif param == "bare":
        head = f"Content-Type: multipart/{subtype}; boundary={boundary}\n"
    else:
        head = f"Content-Type: multipart/{subtype}\n"
    delimiter = b"\n--" + boundary.encode()
    body = draw(raw_bytes(max_size=30))  # preamble
    for part in parts:
        body += delimiter + b"\n" + part
    if draw(st.integers(0, 4)):  # now and then the last part never closes
        body += delimiter + b"--\n"
    body += draw(raw_bytes(max_size=20))  # epilogue
    return head.encode() + b"\n" + body


mime_entity = st.recursive(
    leaf(),
    lambda children: st.one_of(multipart(children), attached_message(children)),
    max_leaves=8,
)


@st.composite
def message(draw) -> bytes:
    """A whole message: hostile top-level headers, then a MIME entity or plain junk."""
    top = draw(headers(max_size=10))
    if draw(st.booleans()):
        top += b"MIME-Version: 1.0\n"
        rest = draw(mime_entity)
    else:
        rest = b"\n" + draw(raw_bytes(max_size=300))
    raw = top + rest
    if draw(st.integers(0, 5)) == 0:
        raw = raw.replace(b"\n", b"\r\n")
    return raw
