"""The store tests' ROOT_MAILCONF: a help desk, then everything of the test mail app."""

from mailserver.mailbox import include, mailbox

from . import mailers

mailpatterns = [
    mailbox(r"^help@desk\.example\.com$", mailers.open_ticket, name="open-ticket"),
    mailbox(r"^flaky@desk\.example\.com$", mailers.flaky, name="flaky"),
    mailbox(r"^quiet@desk\.example\.com$", mailers.quiet_ticket, name="quiet"),
    mailbox(r"", include("tests.mailapp.mailconf")),
]
