from mailserver.mailbox import *

urlpatterns = patterns(
    "",
    (r"^onedest", "tests.mailapp.mailers.reply"),
)
