"""The admin tests' views."""

from django.conf import settings

from mailserver import EmailResponse
from tests.mailapp.models import Ticket


def fragile(request):
    """Has a bug until ADMIN_TEST_FIXED (the fix, deployed): then opens a ticket and replies."""
    if not settings.ADMIN_TEST_FIXED:
        raise RuntimeError("KeyError in the ticket parser (the bug)")
    ticket = Ticket.objects.create(subject=request.subject)
    return EmailResponse(
        subject=f"[#{ticket.pk}] {request.subject}",
        body=f"We opened ticket #{ticket.pk}.\n",
    )
