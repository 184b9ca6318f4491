"""
What a mail view returns.

:class:`EmailResponse` is a reply: a Django ``EmailMessage`` that the handler
sends once the view has returned (and the transaction, if one is open, has
committed). The other responses send nothing and only set the outcome the
transport reports to the mail server.
"""

from __future__ import annotations

from django.core.mail import EmailMessage

from .status import Outcome


class EmailResponse(EmailMessage):
    """
    A reply, sent by the handler. Accepts a single address where Django
    wants a list (``to=request['From']`` as the original API wrote it). It
    comes from MAILER_DAEMON_ADDRESS unless the view says otherwise: mail
    the system sends on its own is the mailer daemon's.
    """

    outcome = Outcome.DELIVERED
    sends_reply = True

    def __init__(
        self,
        subject="",
        body="",
        from_email=None,
        to=None,
        *args,
        answers: bool | None = None,
        send_to_automatic: bool = False,
        **kwargs,
    ):
        # Whether this answers the incoming message (None: inferred from its
        # recipients), and whether to send it even when that message is
        # automatic (see mailserver.autoreply).
        self.answers = answers
        self.send_to_automatic = send_to_automatic
        for name in ("cc", "bcc", "reply_to"):
            if isinstance(kwargs.get(name), str):
                kwargs[name] = [kwargs[name]]
        if isinstance(to, str):
            to = [to]
        if from_email is None and self.sends_reply:
            from .conf import settings

            from_email = settings.MAILER_DAEMON_ADDRESS
        if from_email is not None:
            from_email = str(from_email)
        super().__init__(subject, body, from_email, [str(a) for a in to or ()], *args, **kwargs)
        # The text of the status line, when the view chose one; see Outcome.
        self.status_text: str | None = None
        # The exception this response stands for, when one ended the view.
        self.exception: BaseException | None = None


class EmailIgnoreResponse(EmailResponse):
    """The message is taken (delivered, for the mail server); no reply is sent."""

    outcome = Outcome.IGNORED
    sends_reply = False


class EmailOutcomeResponse(EmailIgnoreResponse):
    """
    A response that carries an outcome other than delivery, and an optional
    text for its status line (``status_text``; ``text`` on a request is the
    message's body, which this is not).
    """

    def __init__(self, text: str | None = None, outcome: Outcome | None = None):
        super().__init__()
        if outcome is not None:
            self.outcome = outcome
        self.status_text = text


class EmailDiscardResponse(EmailOutcomeResponse):
    """Accept the message and drop it, logged as discarded."""

    outcome = Outcome.DISCARDED


class EmailRejectResponse(EmailOutcomeResponse):
    """
    Refuse the message permanently: the mail server bounces it. Pick the
    reason from the outcome table (``Outcome.PERMISSION_DENIED``, ...).
    """

    outcome = Outcome.REJECTED

    def __init__(self, text: str | None = None, outcome: Outcome | None = None):
        if outcome is not None and not outcome.is_permanent:
            raise ValueError(f"{outcome} is not a permanent failure")
        super().__init__(text, outcome)


class EmailDeferResponse(EmailOutcomeResponse):
    """Try again later: the mail server keeps the message queued."""

    outcome = Outcome.TEMPORARY_FAILURE


class EmailNotFoundResponse(EmailRejectResponse):
    outcome = Outcome.UNKNOWN_RECIPIENT


class EmailForbiddenResponse(EmailRejectResponse):
    outcome = Outcome.PERMISSION_DENIED
