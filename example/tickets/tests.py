import django
from django.core import mail
from django.test import TestCase

from mailserver import EmailIgnoreResponse, Outcome, reverse
from mailserver.test import Client, RequestFactory, build_message

from . import mailers
from .models import Ticket

# The fields of the message; Client.send() and RequestFactory.message() build it.
MESSAGE = {"from_email": "Ann <ann@example.org>", "subject": "Printer on fire", "text": "Help!"}


class HelpDeskTests(TestCase):
    def test_new_ticket_gets_a_reply_with_its_address(self):
        result = Client().send(
            recipient="help@bugs.example.com", sender="ann@example.org", **MESSAGE
        )
        self.assertEqual(result.outcome, Outcome.DELIVERED)
        ticket = Ticket.objects.get()
        self.assertEqual(ticket.subject, "Printer on fire")
        [reply] = mail.outbox
        self.assertEqual(reply.to, ["ann@example.org"])
        self.assertEqual(reply.reply_to, [f"ticket-{ticket.pk}@bugs.example.com"])

    def test_comment_on_a_ticket(self):
        ticket = Ticket.objects.create(subject="x", requester="ann@example.org")
        address = reverse("tickets:reply", kwargs={"ticket": ticket.pk})
        result = Client().send(recipient=address, **MESSAGE)
        self.assertEqual(result.outcome, Outcome.IGNORED)
        self.assertEqual(ticket.comments.get().body, "Help!\n")

    def test_the_comment_view_called_directly(self):
        ticket = Ticket.objects.create(subject="x", requester="ann@example.org")
        request = RequestFactory().message(
            recipient=f"ticket-{ticket.pk}@bugs.example.com", **MESSAGE
        )
        response = mailers.comment(request, ticket=ticket.pk)
        self.assertIsInstance(response, EmailIgnoreResponse)
        self.assertEqual(ticket.comments.get().author, "ann@example.org")

    def test_unknown_ticket_and_unknown_address(self):
        for address in ("ticket-999@bugs.example.com", "nobody@example.com"):
            result = Client().send(recipient=address, **MESSAGE)
            self.assertEqual(result.outcome, Outcome.UNKNOWN_RECIPIENT)


class DownBackend:
    """The outgoing mail server is down."""

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("smtp.example.com: connection refused")

    def close(self):
        pass


class RetryTests(TestCase):
    """With mailserver.store, a message the MTA delivers again opens no second ticket."""

    def test_a_redelivered_message_opens_one_ticket(self):
        message = build_message(**MESSAGE)  # the same bytes each time, as an MTA retries
        for _ in range(3):
            result = Client().send(
                message, recipient="help@bugs.example.com", sender="ann@example.org"
            )
            self.assertEqual(result.outcome, Outcome.DELIVERED)
        self.assertEqual(Ticket.objects.count(), 1)
        self.assertEqual(len(mail.outbox), 1)

    def test_a_reply_that_cannot_be_sent_is_sent_later_and_opens_no_ticket(self):
        from django.core.management import call_command

        from mailserver.store.models import OutboundMessage

        if django.VERSION >= (6, 1):
            down = {"MAILERS": {"default": {"BACKEND": "tickets.tests.DownBackend"}}}
        else:
            down = {"EMAIL_BACKEND": "tickets.tests.DownBackend"}
        with self.settings(**down):
            result = Client().send(
                recipient="help@bugs.example.com", sender="ann@example.org", **MESSAGE
            )
        # Delivered all the same: the MTA does not retry, the reply waits.
        self.assertEqual(result.outcome, Outcome.DELIVERED)
        self.assertEqual(Ticket.objects.count(), 1)
        self.assertEqual(OutboundMessage.objects.get().status, "pending")
        # The mail server is back; sendreplies, from cron, sends it.
        call_command("sendreplies", "--flush", verbosity=0)
        [reply] = mail.outbox
        self.assertEqual(reply.to, ["ann@example.org"])
        self.assertEqual(OutboundMessage.objects.get().status, "sent")
