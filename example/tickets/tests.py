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
        for _ in range(3):
            result = Client().send(
                MESSAGE, recipient="help@bugs.example.com", sender="ann@example.org"
            )
            self.assertEqual(result.outcome, Outcome.DELIVERED)
        self.assertEqual(Ticket.objects.count(), 1)
        self.assertEqual(len(mail.outbox), 1)

    def test_a_reply_that_cannot_be_sent_is_sent_later_and_opens_no_ticket(self):
        from django.core.management import call_command

        from mailserver.store.models import OutboundMessage

        with self.settings(EMAIL_BACKEND="tickets.tests.DownBackend"):
            result = Client().send(
                MESSAGE, recipient="help@bugs.example.com", sender="ann@example.org"
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
