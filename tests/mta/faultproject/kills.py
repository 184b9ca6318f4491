"""
The kills: SIGKILL to the process handling a message, at one of the points
of plan.KILL_POINTS, once per message chosen for it. Killed, django-mailpipe
answers nothing and Postfix defers; runmailserver drops every connection it
holds, and the run starts it again.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from django.conf import settings

from .plan import NUMBER_HEADER, Faults, Ledger


def ledger() -> Ledger:
    return Ledger(settings.MTA_RECORD_DIR)


def faults_for(request) -> Faults | None:
    """The faults planned for a request's message; None for mail of no run."""
    value = request[NUMBER_HEADER] if request is not None else None
    if not value:
        return None
    return Faults.for_message(settings.FAULT_SEED, int(value))


def kill_once(number: int, point: str) -> None:
    """Die here, the first time any process of the run reaches this for the message."""
    if ledger().claim("killed", number, point):
        os.kill(os.getpid(), signal.SIGKILL)


def on_received(sender, request, **kwargs) -> None:
    faults = faults_for(request)
    if faults is None:
        return
    if faults.kill == "received":
        kill_once(faults.number, "received")
    elif faults.kill == "timer" and ledger().claim("armed", faults.number):
        # Armed once: a process that ends first is simply not killed.
        def fire():
            time.sleep(faults.kill_delay)
            kill_once(faults.number, "timer")

        threading.Thread(target=fire, daemon=True, name=f"kill-{faults.number}").start()


def on_handled(sender, request, result, **kwargs) -> None:
    faults = faults_for(request)
    if faults is not None and faults.kill == "handled":
        kill_once(faults.number, "handled")
