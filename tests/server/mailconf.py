"""The server tests' mailconf: one route per outcome a transport must report."""

from mailserver.mailbox import mailbox

from . import views

mailpatterns = [
    mailbox(r"^ok@", views.ok, name="ok"),
    mailbox(r"^record@", views.record, name="record"),
    mailbox(r"^raise@", views.broken, name="raise"),
    mailbox(r"^defer@", views.defer, name="defer"),
    mailbox(r"^reject@", views.reject, name="reject"),
    mailbox(r"^slow@", views.slow, name="slow"),
    mailbox(r"^async@", views.async_ok, name="async"),
    mailbox(r"^db@", views.uses_database, name="db"),
    mailbox(r"^signed-(?P<n>\d+)@example\.com$", views.record_n, name="signed", signed=True),
]
