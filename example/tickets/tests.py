from django.core import mail
from django.test import TestCase

from mailserver import Outcome, reverse
from mailserver.test import Client

from .models import Ticket

MESSAGE = b"From: Ann <ann@example.org>\nSubject: Printer on fire\n\nHelp!\n"


class HelpDeskTests(TestCase):
    def test_new_ticket_gets_a_reply_with_its_address(self):
        result = Client().send(MESSAGE, recipient="help@bugs.example.com", sender="ann@example.org")
        self.assertEqual(result.outcome, Outcome.DELIVERED)
        ticket = Ticket.objects.get()
        [reply] = mail.outbox
        self.assertEqual(reply.to, ["ann@example.org"])
        self.assertEqual(reply.reply_to, [f"ticket-{ticket.pk}@bugs.example.com"])

    def test_comment_on_a_ticket(self):
        ticket = Ticket.objects.create(subject="x", requester="ann@example.org")
        address = reverse("tickets:reply", kwargs={"ticket": ticket.pk})
        result = Client().send(MESSAGE, recipient=address)
        self.assertEqual(result.outcome, Outcome.IGNORED)
        self.assertEqual(ticket.comments.get().body, "Help!\n")

    def test_unknown_ticket_and_unknown_address(self):
        self.assertEqual(
            Client().send(MESSAGE, recipient="ticket-999@bugs.example.com").outcome,
            Outcome.UNKNOWN_RECIPIENT,
        )
        self.assertEqual(
            Client().send(MESSAGE, recipient="nobody@example.com").outcome,
            Outcome.UNKNOWN_RECIPIENT,
        )
