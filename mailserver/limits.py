"""
Limits on what a message may be. Everything in an inbound message is the
sender's to choose, so each limit is checked as early as the transport can:
the size while reading, before the message is held in memory whole.
"""

from __future__ import annotations

from .exceptions import MalformedMessage, MessageTooBig


def max_message_size() -> int | None:
    from .conf import settings

    return settings.MAIL_MAX_MESSAGE_SIZE


def too_big(size: int | str, limit: int) -> MessageTooBig:
    """The refusal of a message over the size limit, the same from every transport."""
    return MessageTooBig(f"message size {size} exceeds the limit of {limit} bytes")


def check_size(size: int, limit: int | None = None) -> None:
    if limit is None:
        limit = max_message_size()
    if limit is not None and size > limit:
        raise too_big(size, limit)


def check_structure(message) -> None:
    """
    Refuse a message whose structure is beyond the configured limits: too
    many MIME parts, nested too deep, too many header fields in one header
    section, or a header line too long. Walks the tree without recursion, so
    a message nested thousands deep cannot exhaust the stack here.
    """
    from .conf import settings

    max_parts = settings.MAIL_MAX_MIME_PARTS
    max_depth = settings.MAIL_MAX_MIME_DEPTH
    max_headers = settings.MAIL_MAX_HEADER_COUNT
    max_line = settings.MAIL_MAX_HEADER_LINE_LENGTH
    max_field = settings.MAIL_MAX_HEADER_FIELD_LENGTH
    max_section = settings.MAIL_MAX_HEADER_SECTION_SIZE
    parts = 0
    stack = [(message, 0)]
    while stack:
        part, depth = stack.pop()
        parts += 1
        if max_parts is not None and parts > max_parts:
            raise MalformedMessage(f"more than {max_parts} MIME parts")
        if max_depth is not None and depth > max_depth:
            raise MalformedMessage(f"MIME parts nested deeper than {max_depth}")
        items = list(part.raw_items())
        if max_headers is not None and len(items) > max_headers:
            raise MalformedMessage(f"more than {max_headers} header fields in one section")
        section = 0
        for name, value in items:
            field = len(name) + 2 + len(value)
            section += field
            if max_line is not None and _longest_line(name, value) > max_line:
                raise MalformedMessage(f"header line longer than {max_line} bytes")
            # Python's address parser takes seconds on a field of a megabyte,
            # though each of its folded lines is short.
            if max_field is not None and field > max_field:
                raise MalformedMessage(f"header field longer than {max_field} bytes")
        if max_section is not None and section > max_section:
            raise MalformedMessage(f"header section larger than {max_section} bytes")
        payload = part.get_payload() if part.is_multipart() else None
        if payload:
            stack.extend((child, depth + 1) for child in payload)


def _longest_line(name: str, value) -> int:
    """The longest physical line of a field as it came (see mime._Policy)."""
    longest = getattr(value, "longest_line", None)
    if longest is not None:
        return longest
    first, *rest = str(value).split("\n")
    return max([len(name) + 2 + len(first.rstrip("\r")), *(len(x.rstrip("\r")) for x in rest)])
