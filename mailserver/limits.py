"""
Limits on what a message may be. Everything in an inbound message is the
sender's to choose, so each limit is checked as early as the transport can:
the size while reading, before the message is held in memory whole.
"""

from __future__ import annotations

from .exceptions import MessageTooBig


def max_message_size() -> int | None:
    from .conf import settings

    return settings.MAIL_MAX_MESSAGE_SIZE


def check_size(size: int, limit: int | None = None) -> None:
    if limit is None:
        limit = max_message_size()
    if limit is not None and size > limit:
        raise MessageTooBig(f"message size {size} exceeds the limit of {limit} bytes")
