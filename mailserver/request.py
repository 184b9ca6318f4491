"""
EmailRequest: one message, for one recipient, as a mail view sees it; and
Attachment, a part of it offered as an uploaded file.

The exact bytes are kept (``request.raw``): a view that archives, forwards or
checks a signature needs them, not a re-serialisation. Everything else is
derived from them by the forgiving helpers of :mod:`mailserver.mime`: real
mail has lying charsets and broken headers, and a view should get text, not
an exception.
"""

from __future__ import annotations

import functools
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage, Message
from email.utils import parsedate_to_datetime
from typing import IO, TYPE_CHECKING, Any

from django.core.files.uploadedfile import UploadedFile
from django.utils.datastructures import MultiValueDict

from .addresses import Address, parse
from .envelope import Envelope
from .mime import (
    attachment_name,
    decode_payload,
    decode_text,
    header_addresses,
    header_text,
    header_values,
    iter_chunks,
    message_ids,
    parse_message,
    split_addresses,
)

if TYPE_CHECKING:  # pragma: no cover
    from .authresults import Authentication
    from .resolvers import ResolverMatch
    from .signing import Signature


class Attachment(UploadedFile):
    """
    A MIME part offered as a Django ``UploadedFile``, so that it can go
    straight into a ``FileField``. Its content is decoded when first read,
    not before: a view that ignores a 20 MB attachment never pays for it.
    ``content_id`` is set for inline parts.
    """

    def __init__(self, part: Message, index: int):
        self._part = part
        self._file: IO[bytes] | None = None
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

    def open(self, mode: str | None = None, *args: Any, **kwargs: Any) -> Attachment:
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
        self.resolver_match: ResolverMatch | None = None
        # What the token of a signed reply address carried (mailserver.signing).
        self.signature: Signature | None = None

    def _recipient_from_headers(self) -> str:
        from .conf import settings

        for name in settings.MAIL_RECIPIENT_HEADERS:
            value = header_text(self.message, name)
            if value:
                addresses = split_addresses(value)
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

    # Who sent it --------------------------------------------------------

    @functools.cached_property
    def authentication(self) -> Authentication:
        """
        The SPF, DKIM, DMARC and ARC results of our own MTA
        (mailserver.authresults), or of in-process verification with
        MAIL_VERIFY_SENDERS, and the verdict on the From address.
        """
        from .authresults import authenticate

        return authenticate(self)

    @property
    def sender_verified(self) -> bool:
        """
        The From address is vouched for: DMARC passes for its domain, or a
        DKIM signature aligned with it passes. See sender_verified_reason.
        """
        return self.authentication.sender_verified

    @property
    def sender_verified_reason(self) -> str:
        """Why sender_verified is what it is, in words ("DMARC fail for example.org")."""
        return self.authentication.reason

    @functools.cached_property
    def reply_text(self) -> str:
        """
        What the sender wrote above the quoted message and their signature
        (mailserver.replies), from the plain text part, else the HTML one.
        """
        from .replies import reply_text

        return reply_text(self.text, self.html)

    # Headers ------------------------------------------------------------

    def addresses(self, name: str) -> list[HeaderAddress]:
        """Every address in the named headers, parsed; unparsable ones are skipped."""
        return header_addresses(self.message, name)

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
        files: MultiValueDict[str, Attachment] = MultiValueDict()
        for attachment in self.attachments:
            files.appendlist(attachment.name or "", attachment)
        return files
