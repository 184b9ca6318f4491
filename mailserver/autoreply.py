"""
Replies that cannot loop (RFC 3834).

A service that answers mail automatically is one misconfiguration away from
a mail loop with another robot, or from spraying backscatter at the forged
senders of spam. So an answer to a message that is itself automatic is not
sent: the view still runs, only its reply is held back, logged, and
reported in the Result and the message_handled signal. Answers that are sent
say what they are (``Auto-Submitted: auto-replied``), carry our loop marker,
and thread under the message they answer.
"""

from __future__ import annotations

import fnmatch
import logging
import re

from .addresses import split, strip
from .conf import settings
from .request import EmailRequest
from .response import EmailResponse

logger = logging.getLogger("mailserver.replies")

_RE_PREFIX = re.compile(r"^(?:\s*re(?:\[\d+\]|\(\d+\))?\s*:\s*)+", re.IGNORECASE)


def reply_subject(subject: str) -> str:
    """``Re: `` once, however many the thread has piled up."""
    return "Re: " + _RE_PREFIX.sub("", subject or "").strip()


def collapse_re(subject: str) -> str:
    """A subject the view chose keeps its words; only a pile of ``Re:`` shrinks to one."""
    return reply_subject(subject) if _RE_PREFIX.match(subject) else subject


def own_addresses() -> set[str]:
    return {
        strip(a).lower()
        for a in (settings.MAILER_DAEMON_ADDRESS, *settings.MAIL_OWN_ADDRESSES)
        if a
    }


def automatic_reason(request: EmailRequest) -> str | None:
    """Why ``request`` is automatic mail that must not be answered, or None."""
    sender = request.sender
    if sender == "":
        return "null sender"
    if request.dsn is not None:
        return "delivery status notification"
    local = split(sender or request.from_email or "")[0].lower()
    for pattern in settings.MAIL_AUTOMATIC_SENDERS:
        if local and fnmatch.fnmatchcase(local, pattern.lower()):
            return f"automatic sender <{sender or request.from_email}>"
    auto_submitted = (request["Auto-Submitted"] or "").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    precedence = (request["Precedence"] or "").strip().lower()
    if precedence in ("bulk", "junk", "list"):
        return f"Precedence: {precedence}"
    if settings.MAIL_SUPPRESS_REPLIES_TO_LISTS:
        for header in ("List-Id", "List-Unsubscribe", "List-Post"):
            if header in request:
                return f"mailing list ({header})"
    if request[settings.MAIL_LOOP_HEADER] is not None:
        return f"our own loop marker ({settings.MAIL_LOOP_HEADER})"
    delivered_to = [strip(v).lower() for v in request.get_all("Delivered-To")]
    if own_addresses() & set(delivered_to):
        return "Delivered-To shows our own address"
    if delivered_to.count(request.recipient.lower()) > 1:
        return "Delivered-To shows this recipient twice"
    return None


def _address_of(value: str) -> str:
    from email.utils import parseaddr

    return parseaddr(value)[1].lower()


def answers(response: EmailResponse, request: EmailRequest) -> bool:
    """
    Whether ``response`` answers the incoming message: it was given no
    recipient (it goes to the sender), or one of its recipients is the
    sender. A notice to someone else is not an answer. The view can say so
    itself with ``EmailResponse(answers=...)``.
    """
    if response.answers is not None:
        return response.answers
    if not response.recipients():
        return True
    senders = {a.lower() for a in (request.sender, request.from_email, *request.reply_to) if a}
    return any(_address_of(r) in senders for r in response.recipients())


def prepare_answer(response: EmailResponse, request: EmailRequest) -> str | None:
    """
    Fill in an answer from the request it answers, and say why it must not
    be sent, if it must not. Only what the view left unset is filled in.
    """
    reason = None
    if not response.send_to_automatic:
        reason = automatic_reason(request)
    if not response.recipients():
        if not request.sender:
            return reason or "no one to answer: null sender"
        response.to = [request.sender]
    if response.subject:
        response.subject = collapse_re(str(response.subject))
    else:
        response.subject = reply_subject(request.subject)
    headers = {k.lower() for k in response.extra_headers}
    if "auto-submitted" not in headers:
        response.extra_headers["Auto-Submitted"] = "auto-replied"
    if settings.MAIL_LOOP_HEADER.lower() not in headers:
        response.extra_headers[settings.MAIL_LOOP_HEADER] = settings.MAILER_DAEMON_ADDRESS
    if request.message_id:
        if "in-reply-to" not in headers:
            response.extra_headers["In-Reply-To"] = request.message_id
        if "references" not in headers:
            thread = [*request.references, request.message_id]
            # Long threads keep their first and most recent messages.
            if len(thread) > 20:
                thread = thread[:1] + thread[-19:]
            response.extra_headers["References"] = " ".join(thread)
    return reason


def mark_automatic(message) -> None:
    """Headers for mail the system sends on its own (notices)."""
    message.extra_headers.setdefault("Auto-Submitted", "auto-replied")
    message.extra_headers.setdefault(settings.MAIL_LOOP_HEADER, settings.MAILER_DAEMON_ADDRESS)


def send_failure_notice(request: EmailRequest, result, send=None) -> bool:
    """
    With MAIL_FAILURE_NOTICES on, tell the sender why a message was refused.
    Off by default: the MTA's bounce already is the notice. Never sent to a
    null or automatic sender, whatever the setting. ``send`` takes the
    notice (the store's outbox); by default it is sent at once.
    """
    if not settings.MAIL_FAILURE_NOTICES or not request.sender:
        return False
    if automatic_reason(request):
        return False
    from django.core.mail import EmailMessage

    notice = EmailMessage(
        subject=reply_subject(request.subject) if request.subject else "Undelivered mail",
        body=(
            f"Your message to <{request.recipient}> was not delivered:\n\n    {result.dsn_line()}\n"
        ),
        from_email=settings.MAILER_DAEMON_ADDRESS,
        to=[request.sender],
    )
    mark_automatic(notice)
    if request.message_id:
        notice.extra_headers["In-Reply-To"] = request.message_id
    if send is None:
        from .mailers import send as send_now

        send = send_now
    try:
        send(notice)
    except Exception:
        logger.exception("Could not send the failure notice to %s", request.sender)
        return False
    return True
