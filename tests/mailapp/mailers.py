"""Views of the test mail app. Each records what it was called with on the request."""

from django.shortcuts import get_object_or_404

from mailserver import EmailDeferResponse, EmailIgnoreResponse, EmailRejectResponse, EmailResponse
from mailserver.auth import login_required
from mailserver.exceptions import TemporaryFailure
from mailserver.status import Outcome

from .models import Comment, Delivery, Ticket


def reply(request, *args, **kwargs):
    """The original example, verbatim in spirit: mirror the message back."""
    return EmailResponse(
        from_email=request.get_recipient_display(),
        to=request["From"],
        body=request.get_body(),
        subject="Re: %s" % request["Subject"],  # noqa: UP031 - as the original wrote it
    )


def echo_args(request, *args, **kwargs):
    response = EmailIgnoreResponse()
    response.seen = {"args": args, "kwargs": kwargs, "subaddress": request.subaddress}
    return response


def ticket_comment(request, ticket):
    ticket = get_object_or_404(Ticket, pk=ticket)
    Comment.objects.create(ticket=ticket, body=request.get_body())
    return EmailIgnoreResponse()


def comment_then_fail(request, ticket):
    Comment.objects.create(ticket_id=ticket, body="must be rolled back")
    return EmailDeferResponse("not now")


def broken(request):
    raise RuntimeError("the view is broken")


def missing_configuration(request):
    """The view's own lookup fails: our data is missing, not the sender's mailbox."""
    Ticket.objects.get(subject="the configuration row")
    return EmailIgnoreResponse()


def staff_only(request):
    from django.core.exceptions import PermissionDenied

    raise PermissionDenied(f"<{request.sender}>: staff only")


def returns_none(request):
    return None


def defer(request):
    raise TemporaryFailure("database busy")


def refuse(request):
    return EmailRejectResponse("no attachments here", Outcome.REJECTED)


@login_required
def members_only(request):
    response = EmailIgnoreResponse()
    response.seen = {"user": request.user.get_username()}
    return response


async def async_view(request):
    return EmailIgnoreResponse()


def create_ticket(request):
    ticket = Ticket.objects.create(subject=request.subject)
    return EmailResponse(subject=f"[#{ticket.pk}]", body="opened", to=request.sender)


def record(request, *args, **kwargs):
    e = request.envelope
    Delivery.objects.create(
        sender=e.sender,
        recipient=e.recipient,
        subaddress=request.subaddress,
        original_recipient=e.original_recipient,
        queue_id=e.queue_id,
        client_address=e.client_address,
        size=e.size,
        transport=e.transport,
        subject=request.subject,
        raw=request.raw,
    )
    return EmailIgnoreResponse()


def noisy(request):
    import logging
    import sys
    import warnings

    print("a view that prints")
    print("and writes to stderr", file=sys.stderr)
    warnings.warn("a warning", stacklevel=1)
    logging.getLogger("tests").warning("a log record")
    return EmailIgnoreResponse()


def slow(request):
    import time

    time.sleep(30)
    return EmailIgnoreResponse()


def out_of_memory(request):
    raise MemoryError()


def exits(request):
    import sys

    sys.exit(1)


def inspect(request):
    """
    Touches everything a view can read from a request, as the hostile-input
    tests need: any exception here is a bug in the request, not in the mail.
    """
    seen = {
        "subject": request.subject,
        "from": request.from_email,
        "to": request.to,
        "cc": request.cc,
        "reply_to": request.reply_to,
        "date": request.date,
        "message_id": request.message_id,
        "text": request.text,
        "html": request.html,
        "body": request.get_body(),
        "display": request.get_recipient_display(),
        "files": [(f.name, f.content_type, f.size, len(f.read())) for f in request.attachments],
        "inline": [f.content_id for f in request.inline],
        "headers": [request[name] for name in ("From", "To", "Subject", "Message-ID")],
        "reply_text": request.reply_text,
        "sender_verified": (request.sender_verified, request.sender_verified_reason),
        "authentication": [r.method for r in request.authentication.results],
    }
    for value in (seen["subject"], *seen["headers"]):
        if value is not None and ("\n" in value or "\r" in value):
            raise AssertionError(f"a header value with a line break: {value!r}")
    response = EmailIgnoreResponse()
    response.seen = seen
    return response
