from mailserver.mailbox import mailbox

from . import mailers

app_name = "tickets"

mailpatterns = [
    mailbox(r"^help$", mailers.open_ticket, name="open"),
    mailbox(r"^ticket-(?P<ticket>\d+)$", mailers.comment, name="reply"),
]
