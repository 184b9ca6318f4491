from django.core import mail
from django.test import TestCase

from mailserver import EmailIgnoreResponse, Outcome, reverse
from mailserver.test import Client, RequestFactory

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
