"""The admin tests' ROOT_MAILCONF: a view with a bug, then the store tests' help desk."""

from mailserver.mailbox import include, mailbox

from . import mailers

mailpatterns = [
    mailbox(r"^fragile@desk\.example\.com$", mailers.fragile, name="fragile"),
    mailbox(r"", include("tests.store.mailconf")),
]
