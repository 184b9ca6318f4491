from mailserver.mailbox import *  # noqa: F403

urlpatterns = patterns(  # noqa: F405
    "",
    (r"^onedest", "tests.mailapp.mailers.reply"),
)
