"""Addresses of the test domain. Any other address is unknown."""

from mailserver.bounces import bounce_route
from mailserver.mailbox import mailbox

from . import views

urlpatterns = [
    mailbox(r"^ok@mail\.test$", views.ok, name="ok"),
    mailbox(r"^raise@mail\.test$", views.raise_error, name="raise"),
    mailbox(r"^tempfail@mail\.test$", views.tempfail, name="tempfail"),
    mailbox(r"^user@mail\.test$", views.user, name="user"),
    mailbox(r"^bounces@mail\.test$", views.bounces, name="bounces"),
    mailbox(r"^noisy@mail\.test$", views.noisy, name="noisy"),
    mailbox(r"^slow@mail\.test$", views.slow, name="slow"),
    mailbox(r"^pause@mail\.test$", views.pause, name="pause"),
    # Reply-by-mail: a signed reply address, and the VERP bounce route.
    mailbox(r"^reply-(?P<n>\d+)@mail\.test$", views.signed, name="signed", signed=True),
    bounce_route(r"^verp@mail\.test$", name="verp", view=views.verp),
    mailbox(r"^whois@mail\.test$", views.whois, name="whois"),
]
