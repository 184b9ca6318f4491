from mailserver.mailbox import patterns

urlpatterns = patterns(
    "tests.mailapp.mailers",
    (r"^(?P<queue>\w+)@example\.com$", "echo_args", {"via": "support"}, "queue"),
)
