from django.shortcuts import get_object_or_404

from mailserver import EmailIgnoreResponse, EmailResponse, reverse

from .models import Comment, Ticket


def open_ticket(request):
    """A new ticket; the reply says where to write about it."""
    ticket = Ticket.objects.create(
        subject=request.subject or "(no subject)", requester=request.from_email
    )
    address = reverse("tickets:reply", kwargs={"ticket": ticket.pk})
    return EmailResponse(
        from_email=request.get_recipient_display(),
        to=request.sender or request.from_email,
        subject=f"[#{ticket.pk}] {ticket.subject}",
        body=(
            f"Thank you, we opened ticket #{ticket.pk}.\n"
            f"Reply to this message (it goes to {address}) to add to it.\n"
        ),
        reply_to=[address],
    )


def comment(request, ticket):
    """Mail to ticket-N@ adds to ticket N; there is no ticket N: no such mailbox."""
    ticket = get_object_or_404(Ticket, pk=ticket)
    Comment.objects.create(ticket=ticket, author=request.from_email, body=request.get_body())
    return EmailIgnoreResponse()


def ignore(request):
    return EmailIgnoreResponse()
