"""The test suite's ROOT_MAILCONF: both API styles, includes two deep."""

from mailserver.mailbox import *  # noqa: F403 - the original API, as users write it

from . import mailers

urlpatterns = patterns(  # noqa: F405
    "",
    # The original example: the domain is matched and stripped, the included
    # patterns see the local part.
    (r"@bugs.example.com", include("tests.mailapp.original")),  # noqa: F405
    (r"@lists\.example\.com$", include("tests.mailapp.lists", namespace="lists")),  # noqa: F405
    (r"^support-", include("tests.mailapp.support")),  # noqa: F405
    mailbox(r"^(?P<ticket>\d+)-reply@tickets\.example\.com$", mailers.ticket_comment,  # noqa: F405
            name="ticket-comment"),
    mailbox(r"^atomic-(?P<ticket>\d+)@example\.com$", mailers.comment_then_fail),  # noqa: F405
    mailbox(r"^new@tickets\.example\.com$", mailers.create_ticket, name="new-ticket"),  # noqa: F405
    mailbox(r"^broken@example\.com$", mailers.broken),  # noqa: F405
    mailbox(r"^none@example\.com$", mailers.returns_none),  # noqa: F405
    mailbox(r"^defer@example\.com$", mailers.defer),  # noqa: F405
    mailbox(r"^refuse@example\.com$", mailers.refuse),  # noqa: F405
    mailbox(r"^members@example\.com$", mailers.members_only),  # noqa: F405
    mailbox(r"^async@example\.com$", mailers.async_view),  # noqa: F405
    mailbox(r"^(\w+)\.(\w+)@positional\.example\.com$", mailers.echo_args),  # noqa: F405
    mailbox(r"^echo@bücher\.example$", mailers.echo_args),  # noqa: F405
    mailbox(r"^Case@example\.com$", mailers.echo_args, {"extra": "yes"}, "case"),  # noqa: F405
)
