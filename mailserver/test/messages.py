"""
build_message(): the bytes of a well-formed message, from keyword arguments.

Tests of mail views need messages, and raw bytes written by hand get the
details wrong that a view may depend on (MIME boundaries, transfer
encodings, encoded words for non-ASCII headers). The standard library's
``EmailMessage`` gets them right; this module only gives it the vocabulary
of Django's ``EmailMessage`` (``from_email``, ``to``, ``cc``, ``reply_to``,
``headers``, ``attachments``) plus ``text`` and ``html``, the names under
which a view reads the bodies back from ``request.text`` and
``request.html``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from email import policy
from email.message import EmailMessage, Message
from email.utils import formatdate, make_msgid

# The keyword arguments of build_message(): Client.send() and
# RequestFactory.message() tell them apart from the envelope's.
MESSAGE_FIELDS = frozenset(
    {"subject", "text", "html", "from_email", "to", "cc", "reply_to", "headers", "attachments"}
)

DEFAULT_FROM_EMAIL = "sender@example.com"


def build_message(
    *,
    subject: str = "",
    text: str | None = None,
    html: str | None = None,
    from_email: str = DEFAULT_FROM_EMAIL,
    to: str | Sequence[str] = (),
    cc: str | Sequence[str] = (),
    reply_to: str | Sequence[str] = (),
    headers: Mapping[str, str | Sequence[str] | None] | None = None,
    attachments: Iterable[tuple | Message] = (),
) -> bytes:
    """
    The message as bytes, with LF line endings as a pipe receives it.

    - ``to``, ``cc``, ``reply_to``: an address or a list of them, each
      ``"ann@example.org"`` or ``"Ann <ann@example.org>"``.
    - ``text`` and ``html``: the bodies; both make a multipart/alternative.
      Non-ASCII text is sent as UTF-8 in the transfer encoding that suits it.
    - ``attachments``: ``(filename, content)`` or ``(filename, content,
      mimetype)`` as Django's ``EmailMessage.attach()`` takes them; content is
      bytes, text, or an ``email`` message (attached as message/rfc822). The
      mimetype is guessed from the file name when not given. An ``email``
      message part given instead of a tuple is attached as it is (an inline
      image with its Content-ID, say).
    - ``headers``: added after the others, replacing one of the same name
      (Date and Message-ID are made up unless given); a list gives the field
      several times (``Received``), ``None`` leaves it out.
    """
    message = EmailMessage(policy=policy.default)
    fields: dict[str, str | Sequence[str] | None] = {
        "From": from_email,
        "To": _address_list(to),
        "Cc": _address_list(cc),
        "Reply-To": _address_list(reply_to),
        "Subject": subject,
        "Date": formatdate(localtime=True),
        "Message-ID": make_msgid(domain=_domain(from_email)),
    }
    # A field with nothing to say is left out, as a mail client leaves it out.
    fields = {name: value for name, value in fields.items() if value}
    for name, value in (headers or {}).items():
        # Header names are case-insensitive: "message-id" replaces Message-ID.
        for known in [key for key in fields if key.lower() == name.lower()]:
            del fields[known]
        fields[name] = value
    for name, value in fields.items():
        if value is None:
            continue
        for item in [value] if isinstance(value, str) else value:
            message[name] = item

    if text is not None:
        message.set_content(text)
        if html is not None:
            message.add_alternative(html, subtype="html")
    elif html is not None:
        message.set_content(html, subtype="html")
    attachments = list(attachments)
    if attachments:
        message.make_mixed()
        for attachment in attachments:
            _attach(message, attachment)
    elif text is None and html is None:
        message.set_content("")
    # The email package gives each part it makes a MIME-Version of its own,
    # and none to a message it made multipart from nothing: one, at the top.
    for part in message.walk():
        del part["MIME-Version"]
    message["MIME-Version"] = "1.0"
    return message.as_bytes()


def _address_list(value: str | Sequence[str]) -> str:
    return value if isinstance(value, str) else ", ".join(value)


def _domain(address: str) -> str:
    domain = address.rpartition("@")[2].strip(" >")
    return domain or "example.com"


def _attach(message: EmailMessage, attachment: tuple | Message) -> None:
    if isinstance(attachment, Message):
        message.attach(attachment)  # type: ignore[arg-type]  # any part will do
        return
    filename, content, *rest = attachment
    mimetype = rest[0] if rest else _guess_type(filename, content)
    maintype, _, subtype = mimetype.partition("/")
    if isinstance(content, Message):
        message.add_attachment(content, subtype=subtype or "rfc822", filename=filename)
    elif isinstance(content, str) and maintype == "text":
        message.add_attachment(content, subtype=subtype, filename=filename)
    else:
        if isinstance(content, str):
            content = content.encode("utf-8")
        message.add_attachment(content, maintype, subtype, filename=filename)


def _guess_type(filename: str, content) -> str:
    import mimetypes

    if isinstance(content, Message):
        return "message/rfc822"
    guessed, _ = mimetypes.guess_type(filename)
    if guessed:
        return guessed
    return "text/plain" if isinstance(content, str) else "application/octet-stream"
