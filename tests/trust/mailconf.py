"""Routes of the reply-by-mail tests: signed, unsigned, a signed include, VERP bounces."""

from mailserver.bounces import bounce_route
from mailserver.mailbox import include, mailbox

from . import views

signed_patterns = [
    mailbox(r"^digest$", views.record, name="digest"),
]

mailpatterns = [
    mailbox(
        r"^ticket-(?P<ticket>\d+)@bugs\.example\.com$", views.record, name="reply", signed=True
    ),
    mailbox(r"^open@bugs\.example\.com$", views.record, name="open"),
    mailbox(r"^staff@bugs\.example\.com$", views.staff_only, name="staff"),
    mailbox(r"^verified@bugs\.example\.com$", views.verified_only, name="verified"),
    mailbox(r"@lists\.example\.com$", include((signed_patterns, "lists")), signed=True),
    bounce_route(r"^bounces@bugs\.example\.com$", name="bounces"),
]
