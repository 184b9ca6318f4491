from mailserver.mailbox import mailbox

from . import views

mailpatterns = [
    mailbox(r"^help@mail\.test$", views.help_desk, name="help"),
]
