"""The admin's forms: an address to reroute to, and the conductor's message."""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError


def clean_address(value: str) -> str:
    """An envelope address as the transports take it, or a ValidationError saying why not."""
    from ...addresses import strip, syntax_error

    address = strip(value.strip())
    if error := syntax_error(address):
        raise ValidationError(f"Not an address: {error}.")
    return address


def clean_addresses(value: str) -> list[str]:
    """Envelope addresses separated by commas or line breaks, each as clean_address takes it."""
    return [clean_address(item) for item in re.split(r"[,\n]", value) if item.strip()]


def header_addresses(value: str) -> list[str]:
    """The addresses of a From, To or Cc header's text, each as clean_address takes it."""
    from ...mime import split_addresses

    return [clean_address(addr) for _, addr in split_addresses(value) if addr]


class RerouteForm(forms.Form):
    address = forms.CharField(
        label="Dispatch to",
        max_length=254,
        help_text="The envelope recipient the stored message is dispatched to instead.",
        widget=forms.TextInput(attrs={"size": 40, "autofocus": True}),
    )

    def clean_address(self) -> str:
        return clean_address(self.cleaned_data["address"])


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        if isinstance(data, (list, tuple)):
            return [super(MultipleFileField, self).clean(item, initial) for item in data]
        return [super().clean(data, initial)] if data else []


class ConductorForm(forms.Form):
    """
    A message to send through the dispatch core: composed from its fields,
    or pasted (or uploaded) as raw source. The envelope defaults to what
    the headers say, as an MTA's would.
    """

    COMPOSE, RAW = "compose", "raw"

    mode = forms.ChoiceField(
        label="Message",
        choices=[(COMPOSE, "Compose"), (RAW, "Raw source")],
        initial=COMPOSE,
        widget=forms.RadioSelect,
    )
    from_email = forms.CharField(label="From", required=False, max_length=998)
    to = forms.CharField(label="To", required=False, max_length=998)
    cc = forms.CharField(label="Cc", required=False, max_length=998)
    subject = forms.CharField(required=False, max_length=998)
    text = forms.CharField(label="Text", required=False, widget=forms.Textarea(attrs={"rows": 8}))
    attachments = MultipleFileField(required=False)
    raw = forms.CharField(
        label="Raw source",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 12, "class": "mailstore-mono"}),
        help_text="The whole message, header section and body.",
    )
    raw_file = forms.FileField(label="or a .eml file", required=False)
    sender = forms.CharField(
        label="Envelope sender",
        required=False,
        max_length=256,
        help_text='MAIL FROM. Empty: the From address; "<>" for the null sender of a bounce.',
    )
    recipients = forms.CharField(
        label="Envelope recipients",
        required=False,
        max_length=2000,
        help_text="RCPT TO, separated by commas. Empty: the To and Cc addresses.",
    )
    dry_run = forms.BooleanField(
        label="Dry run",
        required=False,
        help_text="Roll everything back afterwards: nothing is kept in the database and no reply "
        "is sent (shown as it would be). What a view does outside the database, it does.",
    )

    # The groups the conductor's page shows: one of the first two, by mode.
    def compose_fields(self):
        return [self[name] for name in ("from_email", "to", "cc", "subject", "text", "attachments")]

    def raw_fields(self):
        return [self[name] for name in ("raw", "raw_file")]

    def envelope_fields(self):
        return [self[name] for name in ("sender", "recipients", "dry_run")]

    def clean(self):
        data = super().clean() or {}
        if self.errors:
            return data
        if data["mode"] == self.RAW:
            upload = data.get("raw_file")
            raw = upload.read() if upload else data.get("raw", "").encode("utf-8")
            if not raw.strip():
                raise ValidationError("Paste the message's source, or choose a .eml file.")
            data["message"] = raw
            headers = _parse_headers(raw)
            from_header, to_header = headers.get("From", ""), headers.get("To", "")
            cc_header = headers.get("Cc", "")
        else:
            from_header, to_header, cc_header = data["from_email"], data["to"], data["cc"]
            if not from_header:
                raise ValidationError({"from_email": "Say whom it is from."})
            if not (data["to"] or data["cc"] or data["recipients"]):
                raise ValidationError("Say whom it is to: To, Cc or the envelope recipients.")
            data["message"] = self.compose(data)
        sender = data["sender"].strip()
        if sender in ("<>", '""'):
            data["envelope_sender"] = ""
        elif sender:
            data["envelope_sender"] = _field(clean_address, sender, "sender")
        else:
            found = _field(header_addresses, from_header, "from_email") if from_header else []
            data["envelope_sender"] = found[0] if found else ""
        if data["recipients"]:
            recipients = _field(clean_addresses, data["recipients"], "recipients")
        else:
            recipients = _field(header_addresses, to_header, "to") if to_header else []
            recipients += _field(header_addresses, cc_header, "cc") if cc_header else []
        data["envelope_recipients"] = recipients
        if not data["envelope_recipients"]:
            raise ValidationError("No envelope recipient: give one, or a To or Cc header.")
        return data

    @staticmethod
    def compose(data) -> bytes:
        from ...test.messages import build_message

        attachments = [
            (upload.name, upload.read(), upload.content_type or "application/octet-stream")
            for upload in data.get("attachments") or []
        ]
        return build_message(
            subject=data["subject"],
            text=data["text"],
            from_email=data["from_email"],
            to=data["to"],
            cc=data["cc"],
            attachments=attachments,
        )


def _field(clean, value, name):
    try:
        return clean(value)
    except ValidationError as exc:
        raise ValidationError({name: exc.messages}) from None


def _parse_headers(raw: bytes) -> dict[str, str]:
    from ...mime import header_text, parse_message

    try:
        message = parse_message(raw)
    except Exception:
        return {}
    return {name: header_text(message, name) or "" for name in ("From", "To", "Cc")}
