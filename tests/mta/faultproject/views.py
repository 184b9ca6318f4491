from __future__ import annotations

import functools
import os

from django.db import transaction

from mailserver import EmailResponse

from .kills import faults_for, kill_once, ledger
from .models import Handled
from .plan import NUMBER_HEADER


def help_desk(request):
    """
    Opens a "ticket" (one Handled row) and answers it. The attempt is counted
    in the ledger before anything else, outside the transaction, so that a
    rolled-back or killed attempt still counts as the first.
    """
    faults = faults_for(request)
    number = faults.number
    attempt = ledger().count("view", number)
    Handled.objects.create(
        number=number,
        message_id=request["Message-ID"] or "",
        queue_id=request.envelope.queue_id or "",
        attempt=attempt,
        pid=os.getpid(),
    )
    if faults.kill == "view":
        kill_once(number, "view")
    elif faults.kill == "commit":
        transaction.on_commit(functools.partial(kill_once, number, "commit"))
    if faults.view_raises and attempt == 1:
        ledger().append("raised", {"number": number, "pid": os.getpid()})
        raise RuntimeError(f"injected fault: first attempt at message {number}")
    return EmailResponse(
        subject=f"Re: {request.subject}",
        body=f"We have your message {number}.\n",
        from_email="desk@mail.test",
        to=request.sender,
        headers={NUMBER_HEADER: str(number)},
    )
