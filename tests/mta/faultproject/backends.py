"""
An outgoing mail backend standing for an SMTP server that is down for a
fifth of the sends: each attempt at sending a reply fails or not as the plan
says (plan.send_fails), by raising as smtplib would. What it sends goes to
the ledger's "sent" log, one line per reply that left, with its Message-ID.
"""

from __future__ import annotations

import os
import smtplib

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend

from .plan import NUMBER_HEADER, Ledger, send_fails


class FlakyEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        ledger = Ledger(settings.MTA_RECORD_DIR)
        sent = 0
        for message in email_messages:
            # Built once: Django's message() makes a new Message-ID on each call
            # when the message has none of its own.
            mime = message.message()
            number = int(mime[NUMBER_HEADER])
            attempt = ledger.count("send", number)
            entry = {
                "number": number,
                "attempt": attempt,
                "message_id": mime["Message-ID"],
                "pid": os.getpid(),
            }
            if send_fails(settings.FAULT_SEED, number, attempt):
                ledger.append("send-failed", entry)
                if not self.fail_silently:
                    raise smtplib.SMTPServerDisconnected("injected fault: outgoing server down")
                continue
            ledger.append("sent", entry)
            sent += 1
        return sent
