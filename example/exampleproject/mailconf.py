from tickets import mailers

from mailserver.mailbox import include, mailbox

mailpatterns = [
    # Everything at the help desk's domain goes to the tickets app, which
    # sees only the local part ("help", "ticket-42").
    mailbox(r"@bugs\.example\.com$", include("tickets.mailbox", namespace="tickets")),
    mailbox(r"^newsletter@example\.com$", mailers.ignore, name="newsletter"),
]
