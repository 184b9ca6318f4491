"""
Delivery status notifications coming in: RFC 3464 ``multipart/report``.

A view routed to a bounce address (a VERP route such as
``bounces+<token>@``) wants to know which recipient failed and whether for
good: ``request.dsn.recipients[0].is_permanent``. The report is parsed from
the structured ``message/delivery-status`` part, not from the human text,
which every MTA words differently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message

from .mime import decode_payload, decode_text, header_text, parse_message

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_REPORT_TYPES = ("message/delivery-status", "message/global-delivery-status")


def _typed_value(value: str | None, address: bool = False) -> str:
    """``rfc822; <ann@example.org>`` -> ``ann@example.org``; ``smtp; 550 ...`` -> ``550 ...``."""
    if not value:
        return ""
    _, sep, rest = value.partition(";")
    value = (rest if sep else value).strip()
    if address and value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value


@dataclass(frozen=True)
class RecipientStatus:
    """One recipient's block of a report."""

    action: str
    status: str
    final_recipient: str
    original_recipient: str = ""
    diagnostic_code: str = ""
    remote_mta: str = ""
    last_attempt: str = ""

    @property
    def is_permanent(self) -> bool:
        """A hard failure: the address will not work if tried again."""
        return self.action == "failed" or self.status.startswith("5.")

    @property
    def is_temporary(self) -> bool:
        """A soft failure: the MTA is still trying, or gave up on a temporary error."""
        return not self.is_permanent and (self.action == "delayed" or self.status.startswith("4."))


@dataclass
class DeliveryReport:
    reporting_mta: str = ""
    original_envelope_id: str = ""
    arrival_date: str = ""
    recipients: list[RecipientStatus] = field(default_factory=list)
    # The human-readable first part, as the MTA wrote it.
    explanation: str = ""
    # The returned message, whole (message/rfc822) or its headers only
    # (text/rfc822-headers), parsed; None when the MTA returned nothing.
    returned_message: Message | None = None

    @property
    def failed(self) -> list[RecipientStatus]:
        return [r for r in self.recipients if r.is_permanent]

    @property
    def is_permanent(self) -> bool:
        return bool(self.failed)

    @property
    def is_temporary(self) -> bool:
        return not self.is_permanent and any(r.is_temporary for r in self.recipients)


def is_report(message: Message) -> bool:
    return message.get_content_type() == "multipart/report" and (
        str(message.get_param("report-type") or "").lower() in ("delivery-status", "")
        and any(p.get_content_type() in _REPORT_TYPES for p in _children(message))
    )


def _children(message: Message) -> list[Message]:
    payload = message.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def _status_blocks(part: Message) -> list[Message]:
    """
    The field blocks of a delivery-status part: the email package parses
    each blank-line-separated block as a header-only message. A part it
    could not split that way is parsed here from its text.
    """
    blocks = _children(part)
    if blocks:
        return blocks
    from email.parser import Parser

    text = decode_payload(part).decode("utf-8", "replace")
    return [
        Parser().parsestr(chunk.strip() + "\n", headersonly=True)
        for chunk in re.split(r"\r?\n\s*\r?\n", text)
        if chunk.strip()
    ]


def parse_report(message: Message) -> DeliveryReport | None:
    """The delivery status notification in ``message``, or None if it is not one."""
    if not is_report(message):
        return None
    report = DeliveryReport()
    for part in _children(message):
        ctype = part.get_content_type()
        if ctype in _REPORT_TYPES:
            blocks = _status_blocks(part)
            if not blocks:
                continue
            per_message, *per_recipient = blocks
            report.reporting_mta = _typed_value(header_text(per_message, "Reporting-MTA"))
            report.original_envelope_id = header_text(per_message, "Original-Envelope-Id") or ""
            report.arrival_date = header_text(per_message, "Arrival-Date") or ""
            for block in per_recipient:
                status = _STATUS.search(header_text(block, "Status") or "")
                report.recipients.append(
                    RecipientStatus(
                        action=(header_text(block, "Action") or "").lower(),
                        status=".".join(status.groups()) if status else "",
                        final_recipient=_typed_value(
                            header_text(block, "Final-Recipient"), address=True
                        ),
                        original_recipient=_typed_value(
                            header_text(block, "Original-Recipient"), address=True
                        ),
                        diagnostic_code=_typed_value(header_text(block, "Diagnostic-Code")),
                        remote_mta=_typed_value(header_text(block, "Remote-MTA")),
                        last_attempt=header_text(block, "Last-Attempt-Date") or "",
                    )
                )
        elif ctype in ("message/rfc822", "message/global") and report.returned_message is None:
            inner = _children(part)
            report.returned_message = inner[0] if inner else None
        elif ctype in ("text/rfc822-headers", "text/global-headers"):
            report.returned_message = parse_message(decode_payload(part))
        elif not report.explanation and part.get_content_maintype() in ("text", "multipart"):
            # The human-readable part: text, or text among alternatives.
            text = next((p for p in part.walk() if p.get_content_type() == "text/plain"), None)
            if text is not None:
                report.explanation = decode_text(text)
    return report
