"""
Views that write down what they were given, one JSON line per call, so a
test can check what crossed the MTA -> pipe -> Django boundary.
"""

import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path

from django.conf import settings

from mailserver import EmailIgnoreResponse
from mailserver.response import EmailDeferResponse

# The environment variables Exim's pipe transport sets.
EXIM_VARIABLES = (
    "SENDER",
    "RECIPIENT",
    "LOCAL_PART",
    "LOCAL_PART_PREFIX",
    "LOCAL_PART_SUFFIX",
    "DOMAIN",
    "MESSAGE_ID",
)


def record(view, request, **extra):
    envelope = request.envelope
    entry = {
        "view": view,
        "message_id": request["Message-ID"],
        "subject": request.subject,
        "sender": envelope.sender,
        "recipient": envelope.recipient,
        "original_recipient": envelope.original_recipient,
        "queue_id": envelope.queue_id,
        "client_address": envelope.client_address,
        "subaddress": request.subaddress,
        "size": len(request.raw),
        "longest_line": max(len(line) for line in request.raw.split(b"\n")),
        "transport": envelope.transport,
        "raw_head": request.raw[:200].decode("ascii", "replace"),
        "argv": sys.argv,
        "env": {k: os.environ[k] for k in EXIM_VARIABLES if k in os.environ},
        "uid": os.getuid(),
        **extra,
    }
    path = Path(settings.MTA_RECORD_DIR) / f"{view}.jsonl"
    with path.open("a") as f:
        f.write(json.dumps(entry) + "\n")


def ok(request, *args, **kwargs):
    record("ok", request)
    return EmailIgnoreResponse()


def raise_error(request, *args, **kwargs):
    record("raise", request)
    raise RuntimeError("this view always fails")


def tempfail(request, *args, **kwargs):
    record("tempfail", request)
    return EmailDeferResponse("not now, try again later")


def user(request, *args, **kwargs):
    record("user", request)
    return EmailIgnoreResponse()


def bounces(request, *args, **kwargs):
    record("bounces", request)
    return EmailIgnoreResponse()


def signed(request, n):
    signature = request.signature
    record("signed", request, n=n, token=signature.token, bound=signature.bound)
    return EmailIgnoreResponse()


def verp(request):
    """The ready bounce view, recording the bounce_received signals it sends."""
    from mailserver.bounces import bounce_view
    from mailserver.signals import bounce_received

    events = []

    def receiver(sender, **kwargs):
        events.append(
            {
                "recipient": kwargs["recipient"],
                "permanent": kwargs["permanent"],
                "status": kwargs["status"].status,
            }
        )

    bounce_received.connect(receiver)
    try:
        response = bounce_view(request)
    finally:
        bounce_received.disconnect(receiver)
    record("verp", request, bounces=events)
    return response


def whois(request):
    """What the trusted Authentication-Results say of the sender."""
    auth = request.authentication
    record(
        "whois",
        request,
        results=[[r.method, r.result] for r in auth.results],
        verified=request.sender_verified,
        reason=request.sender_verified_reason,
        ignored=auth.ignored,
        headers=request.get_all("Authentication-Results"),
    )
    return EmailIgnoreResponse()


def noisy(request, *args, **kwargs):
    """Writes to stdout and stderr, warns and logs before failing: none of
    it may reach the MTA ahead of the status line."""
    record("noisy", request)
    print("stray output from a view")
    sys.stderr.write("stray error output from a view\n")
    warnings.warn("a warning from a view", stacklevel=1)
    logging.getLogger("mtaproject").error("an error logged by a view")
    raise RuntimeError("noisy view fails")


def slow(request, *args, **kwargs):
    """Outlives MAIL_PIPE_DEADLINE."""
    record("slow", request)
    time.sleep(120)
    return EmailIgnoreResponse()


def pause(request, *args, **kwargs):
    """Takes MTA_PAUSE_SECONDS: long enough to stop the server under it."""
    record("pause", request)
    time.sleep(settings.MTA_PAUSE_SECONDS)
    record("pause-done", request)
    return EmailIgnoreResponse()
