from mailserver.mailbox import include, mailbox

app_name = "lists"

mailpatterns = [
    # Nested two deep: the list name is matched here and stripped, the
    # command is matched below.
    mailbox(r"^(?P<list>[a-z0-9]+)", include("tests.mailapp.listcommands")),
]
