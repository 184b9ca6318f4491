"""
A stored message as the admin shows it: parsed from its raw bytes by the
app's own EmailRequest, as a mail view would see it.

Everything here is the sender's to choose, so nothing is trusted: header
values are text (the templates escape them), the HTML body is only ever
served by :func:`html_response` (a sandboxed document with a Content-Security-
Policy that lets nothing run or load), and attachments are served as
downloads under names made safe by :func:`safe_filename`.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from django.http import HttpResponse

    from ...envelope import Envelope
    from ...request import Attachment, EmailRequest

# The HTML body's document may run nothing and load nothing from anywhere:
# no script, no remote image, style sheet, font, frame or form target. Inline
# style is allowed (mail is styled so); images only as data: URIs, which is
# what the message's own inline images (cid:) are turned into. The CSP's own
# sandbox makes the document's origin opaque even when opened on its own,
# outside the admin's sandboxed frame.
HTML_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data: cid:; font-src data:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'self'; sandbox"
)
# Inline images are embedded as data: URIs up to this size each, and in all.
INLINE_IMAGE_LIMIT = 2 * 1024 * 1024
INLINE_IMAGES_LIMIT = 10 * 1024 * 1024

_CID = re.compile(r"\bcid:([^\s\"'<>()]+)", re.IGNORECASE)
# What no file name of a download may hold: path separators and what
# Windows refuses; control and format characters are gone already.
_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_RESERVED = {
    "con",
    "prn",
    "aux",
    "nul",
    *(f"com{i}" for i in range(10)),
    *(f"lpt{i}" for i in range(10)),
}
FILENAME_LIMIT = 120


@dataclass
class Part:
    """An attachment as listed: its index in EmailRequest.attachments, from 1."""

    index: int
    name: str
    content_type: str
    size: int
    disposition: str
    content_id: str


class StoredMessage:
    """
    The message parsed for display. ``error`` is set, and the rest empty,
    when even the forgiving parser gave up (the raw source can still be
    downloaded).
    """

    def __init__(self, raw: bytes, envelope: Envelope | None = None):
        from ...request import EmailRequest

        self.raw = raw
        self.error = ""
        self.request: EmailRequest | None = None
        try:
            self.request = EmailRequest(raw, envelope)
        except Exception as exc:  # RecursionError on absurd nesting, among others
            self.error = f"{type(exc).__name__}: {exc}"

    @property
    def headers(self) -> list[tuple[str, str]]:
        """Every header field in order, each value decoded to one line of text."""
        from ...mime import decode_words

        if self.request is None:
            return []
        fields = []
        for name, value in self.request.message.raw_items():
            text = str(value)
            if "=?" in text:
                text = decode_words(text)
            text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            fields.append((str(name), " ".join(text.split())))
        return fields

    @property
    def text(self) -> str | None:
        return self._body("text")

    @property
    def html(self) -> str | None:
        return self._body("html")

    def _body(self, name: str) -> str | None:
        if self.request is None:
            return None
        try:
            return getattr(self.request, name)
        except Exception:
            return None

    def attachments(self) -> list[Attachment]:
        if self.request is None:
            return []
        try:
            return list(self.request.attachments)
        except Exception:
            return []

    def parts(self) -> list[Part]:
        parts = []
        for index, attachment in enumerate(self.attachments(), 1):
            try:
                size = attachment.size
            except Exception:
                size = 0
            parts.append(
                Part(
                    index=index,
                    name=safe_filename(attachment.name or "", f"part-{index}"),
                    content_type=attachment.content_type or "application/octet-stream",
                    size=size,
                    disposition=attachment.disposition or "",
                    content_id=attachment.content_id or "",
                )
            )
        return parts

    def attachment(self, index: int) -> tuple[str, bytes] | None:
        """The safe name and the content of attachment ``index`` (from 1), or None."""
        attachments = self.attachments()
        if not 1 <= index <= len(attachments):
            return None
        attachment = attachments[index - 1]
        return safe_filename(attachment.name or "", f"part-{index}"), attachment.read()

    def html_document(self) -> str | None:
        """The HTML body, its cid: references to inline images made data: URIs."""
        html = self.html
        if html is None:
            return None
        images: dict[str, str] = {}
        budget = INLINE_IMAGES_LIMIT
        for attachment in self.attachments():
            content_type = (attachment.content_type or "").lower()
            # SVG is a document, not a picture: left out.
            if not attachment.content_id or not content_type.startswith("image/"):
                continue
            if content_type == "image/svg+xml":
                continue
            content = attachment.read()
            if len(content) > min(INLINE_IMAGE_LIMIT, budget):
                continue
            budget -= len(content)
            encoded = base64.b64encode(content).decode("ascii")
            images[attachment.content_id.lower()] = f"data:{content_type};base64,{encoded}"

        def embed(match: re.Match) -> str:
            return images.get(match.group(1).lower(), match.group(0))

        return _CID.sub(embed, html) if images else html


def safe_filename(name: str, fallback: str) -> str:
    """
    ``name`` as a download may carry it: no directory, no character a file
    system or a header would take for something else, no leading dot (a
    hidden file, ``..``), not a device name, at most FILENAME_LIMIT
    characters with its extension kept; ``fallback`` when nothing is left.
    """
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable())
    name = " ".join(_UNSAFE.sub("_", name).split()).strip(". ")
    if name.split(".", 1)[0].lower() in _RESERVED:
        name = f"_{name}"
    if len(name) > FILENAME_LIMIT:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            name = f"{stem[: FILENAME_LIMIT - len(extension) - 1]}.{extension}"
        else:
            name = name[:FILENAME_LIMIT]
    return name or fallback


def html_response(document: str) -> HttpResponse:
    """
    The HTML body as its own document, for the admin's sandboxed frame
    only: nothing in it runs or loads (see HTML_POLICY), it may be framed
    by the admin's own pages only, and it is never cached.
    """
    from django.http import HttpResponse

    response = HttpResponse(document, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = HTML_POLICY
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["X-Frame-Options"] = "SAMEORIGIN"
    response["Cache-Control"] = "private, no-store"
    return response


def download_response(content: bytes, filename: str) -> HttpResponse:
    """
    Bytes from a message as a download: whatever the sender called their
    type, the browser gets an opaque type, is told not to guess, and saves
    the file rather than showing it.
    """
    from django.http import HttpResponse
    from django.utils.http import content_disposition_header

    response = HttpResponse(content, content_type="application/octet-stream")
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response


def read_raw(inbound) -> bytes:
    """The stored message's bytes (FileNotFoundError when the storage has lost them)."""
    with inbound.open_raw() as file:
        return file.read()
