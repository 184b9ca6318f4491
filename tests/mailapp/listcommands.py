from mailserver.mailbox import mailbox

from . import mailers

app_name = "listcommands"

mailpatterns = [
    mailbox(r"^-(?P<command>subscribe|unsubscribe)$", mailers.echo_args, name="command"),
    mailbox(r"^$", mailers.echo_args, name="post"),
]
