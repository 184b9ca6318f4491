"""The test suite's ROOT_MAILCONF: both API styles, includes two deep."""

from mailserver.mailbox import *

from . import mailers

urlpatterns = patterns(
    "",
    # The original example: the domain is matched and stripped, the included
    # patterns see the local part.
    (r"@bugs.example.com", include("tests.mailapp.original")),
    (r"@lists\.example\.com$", include("tests.mailapp.lists", namespace="lists")),
    (r"^support-", include("tests.mailapp.support")),
    mailbox(
        r"^(?P<ticket>\d+)-reply@tickets\.example\.com$",
        mailers.ticket_comment,
        name="ticket-comment",
    ),
    mailbox(r"^atomic-(?P<ticket>\d+)@example\.com$", mailers.comment_then_fail),
    mailbox(r"^new@tickets\.example\.com$", mailers.create_ticket, name="new-ticket"),
    mailbox(r"^broken@example\.com$", mailers.broken),
    mailbox(r"^config@example\.com$", mailers.missing_configuration),
    mailbox(r"^staff@example\.com$", mailers.staff_only),
    mailbox(r"^none@example\.com$", mailers.returns_none),
    mailbox(r"^defer@example\.com$", mailers.defer),
    mailbox(r"^refuse@example\.com$", mailers.refuse),
    mailbox(r"^members@example\.com$", mailers.members_only),
    mailbox(r"^async@example\.com$", mailers.async_view),
    mailbox(r"^(\w+)\.(\w+)@positional\.example\.com$", mailers.echo_args),
    mailbox(r"^echo@bücher\.example$", mailers.echo_args),
    mailbox(r"^record@example\.com$", mailers.record, name="record"),
    mailbox(r"^inspect@example\.com$", mailers.inspect, name="inspect"),
    mailbox(r"^noisy@example\.com$", mailers.noisy),
    mailbox(r"^slow@example\.com$", mailers.slow),
    mailbox(r"^oom@example\.com$", mailers.out_of_memory),
    mailbox(r"^exits@example\.com$", mailers.exits),
    mailbox(r"^Case@example\.com$", mailers.echo_args, {"extra": "yes"}, "case"),
)
