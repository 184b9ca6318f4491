"""
The conductor: a message composed (or pasted) in the admin and sent
through the dispatch core with the store, as a transport sends one
(transport "conductor"), so that a developer or a support person sees what
the mail system does with it: the outcome, the route, the reply.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field

from django.conf import settings as django_settings
from django.db import router, transaction
from django.urls import reverse

from ...envelope import Envelope
from ..models import InboundMessage
from .base import apart
from .display import StoredMessage
from .forms import ConductorForm

TRANSPORT = "conductor"


@dataclass
class Reply:
    """A reply the run wrote to the outbox: sent, waiting, or (dry run) what would go."""

    pk: int | None
    status: str
    recipients: list[str]
    subject: str
    # The message as it goes, and its text body for people.
    source: str
    text: str


@dataclass
class Delivery:
    """What became of the message for one envelope recipient."""

    recipient: str
    result: object
    inbound: InboundMessage | None = None
    answered_from_record: bool = False
    replies: list[Reply] = field(default_factory=list)
    traceback: str = ""
    url: str = ""


def conduct(
    raw: bytes, sender: str | None, recipients: list[str], dry_run: bool = False
) -> list[Delivery]:
    """
    Dispatch ``raw`` once per recipient through the transports' own loop;
    with ``dry_run``, in a transaction rolled back afterwards (the replies
    are read before, and never sent: their sending waits for a commit that
    does not come).
    """
    from ...transport import deliver

    envelope = Envelope(sender=sender, transport=TRANSPORT, size=len(raw))
    if not dry_run:
        return [_delivery(raw, result) for result in deliver(raw, envelope, recipients)]
    using = router.db_for_write(InboundMessage)
    with transaction.atomic(using=using):
        deliveries = [_delivery(raw, result) for result in deliver(raw, envelope, recipients)]
        transaction.set_rollback(True, using=using)
    for delivery in deliveries:
        delivery.inbound = None  # rolled back
        for reply in delivery.replies:
            reply.pk = None
            reply.status = "not sent (dry run)"
    return deliveries


def _delivery(raw: bytes, result) -> Delivery:
    from ..handler import RecordedResult
    from ..keys import fingerprint

    delivery = Delivery(recipient=result.recipient, result=result)
    delivery.answered_from_record = isinstance(result, RecordedResult)
    exc = result.exception or getattr(result.response, "exception", None)
    if exc is not None and not getattr(exc, "outcome", None):
        delivery.traceback = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if not result.recipient:
        return delivery
    key = fingerprint(raw).key(result.recipient)
    delivery.inbound = InboundMessage.objects.filter(idempotency_key=key).first()
    if delivery.inbound is not None:
        for reply in delivery.inbound.replies.order_by("created_at", "pk"):
            raw_reply = bytes(reply.raw)
            delivery.replies.append(
                Reply(
                    pk=reply.pk,
                    status=reply.status,
                    recipients=list(reply.recipients),
                    subject=reply.subject,
                    source=raw_reply.decode("utf-8", "replace"),
                    text=StoredMessage(raw_reply).text or "",
                )
            )
    return delivery


def conductor_view(model_admin, request):
    form = ConductorForm(
        request.POST or None,
        request.FILES or None,
        initial={"from_email": getattr(request.user, "email", "") or ""},
    )
    deliveries: list[Delivery] = []
    dry_run = False
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        dry_run = data["dry_run"]
        deliveries = apart(
            conduct,
            data["message"],
            data["envelope_sender"],
            data["envelope_recipients"],
            dry_run,
        )
        model_admin.log(
            request,
            [d.inbound for d in deliveries if d.inbound is not None],
            "Sent through the conductor.",
        )
    for delivery in deliveries:
        if delivery.inbound is not None:
            delivery.url = reverse(
                f"{model_admin.admin_site.name}:mailserver_store_inboundmessage_change",
                args=[delivery.inbound.pk],
            )
    return model_admin.page(
        request,
        "admin/mailserver_store/conductor.html",
        title="Conductor",
        form=form,
        deliveries=deliveries,
        dry_run=dry_run,
        debug=django_settings.DEBUG,
    )
