"""
VERP: a signed bounce address for each outgoing message, and the route
that turns the bounce coming back into a signal.

A notification to ann@example.org goes out with the envelope sender
``bounces+<token>@bugs.example.com``, where the token is made for
ann@example.org (:mod:`mailserver.signing`). When her mailbox is gone, the
bounce comes back to that address; the route finds ann's address among the
recipients the report names (or among those of the returned message), checks
that the token was made for it, and sends :data:`bounce_received` naming her
and whether the failure is permanent. A bounce forged by someone who never
saw our mail has no valid token, or one made for another address, and is
refused with 5.7.1 before the view runs.

Tokens carry no copy of the address (it would not fit in the 64 octets of a
local part), so a report that names neither the recipient nor returns the
message's headers cannot be attributed, and is refused too. Every common
MTA returns at least the headers.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from .response import EmailIgnoreResponse
from .signals import bounce_received

if TYPE_CHECKING:  # pragma: no cover
    from django.core.mail import EmailMessage

    from .dsn import RecipientStatus
    from .request import EmailRequest
    from .resolvers import MailboxPattern

__all__ = ["bounce_address", "bounce_received", "bounce_route", "bounce_view", "use_verp"]


def bounce_address(recipient: str, route: str = "bounces", *, expires: Any = None) -> str:
    """
    The signed envelope sender for a message to ``recipient``: the address
    of the named bounce route with a token made for ``recipient``, good for
    ``MAIL_BOUNCE_ADDRESS_MAX_AGE`` (30 days) unless ``expires`` says otherwise.
    """
    from .conf import settings
    from .resolvers import reverse

    if expires is None and settings.MAIL_BOUNCE_ADDRESS_MAX_AGE is not None:
        expires = timedelta(seconds=settings.MAIL_BOUNCE_ADDRESS_MAX_AGE)
    return reverse(route, sign=True, bind=recipient, expires=expires)


def use_verp(message: EmailMessage, route: str = "bounces", *, expires: Any = None):
    """
    Give a Django ``EmailMessage`` (an ``EmailResponse`` too) with one
    recipient a VERP envelope sender; its From header stays what it was.
    Django's SMTP backend uses ``from_email`` as the envelope sender and an
    explicit ``From`` header for the header, so both are set here.
    """
    recipients = message.recipients()
    if len(recipients) != 1:
        raise ValueError(f"VERP needs one message per recipient; this one has {len(recipients)}.")
    if not any(name.lower() == "from" for name in message.extra_headers):
        message.extra_headers["From"] = message.from_email
    message.from_email = bounce_address(recipients[0], route, expires=expires)
    return message


def bounce_candidates(request: EmailRequest) -> list[str]:
    """
    The addresses a bounce may be about: the recipients its report names,
    then the To and Cc of the message it returns. The route's token must
    have been made for one of them.
    """
    from .mime import header_addresses

    report = request.dsn
    if report is None:
        return []
    found = []
    for status in report.recipients:
        found += [status.original_recipient, status.final_recipient]
    if report.returned_message is not None:
        for name in ("To", "Cc"):
            found += [a.addr_spec for a in header_addresses(report.returned_message, name)]
    return [address for address in found if address]


def _status_for(recipient: str, request: EmailRequest) -> RecipientStatus | None:
    report = request.dsn
    if report is None or not report.recipients:
        return None
    wanted = recipient.lower()
    for status in report.recipients:
        if wanted in (status.original_recipient.lower(), status.final_recipient.lower()):
            return status
    # Named only by the returned message (forwarding rewrote the recipient):
    # the report's own verdict for the one recipient it has, or the worst.
    return next((s for s in report.recipients if s.is_permanent), report.recipients[0])


def bounce_view(request: EmailRequest) -> EmailIgnoreResponse:
    """
    Send :data:`bounce_received` for the recipient the token was made for.
    A report of success (``action: delivered``, ``relayed``, ``expanded``)
    sends nothing. The message is always taken and never answered.
    """
    signature = request.signature
    status = None
    recipient = signature.bound if signature is not None else None
    if recipient:
        status = _status_for(recipient, request)
    elif request.dsn is not None and request.dsn.recipients:
        # An unbound token: the route is genuine, the report names the recipient.
        status = request.dsn.recipients[0]
        recipient = status.original_recipient or status.final_recipient
    if status is not None and recipient and (status.is_permanent or status.is_temporary):
        bounce_received.send(
            sender=bounce_view,
            request=request,
            recipient=recipient,
            permanent=status.is_permanent,
            status=status,
            report=request.dsn,
        )
    return EmailIgnoreResponse()


def bounce_route(
    regex: str = r"^bounces$", name: str = "bounces", view: Any = bounce_view
) -> MailboxPattern:
    """
    The mailconf route of the VERP addresses: ``bounce_route()`` in a domain
    include, or ``bounce_route(r"^bounces@example\\.com$")`` at the root.
    Its tokens are checked against :func:`bounce_candidates`.
    """
    from .mailbox import mailbox

    return cast("MailboxPattern", mailbox(regex, view, name=name, signed=bounce_candidates))
