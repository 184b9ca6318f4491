"""
The way our mail leaves: replies, failure notices and word to ADMINS.

Django 6.1 replaced ``EMAIL_BACKEND`` and ``get_connection()`` by
``MAILERS``, named mailers chosen per send with ``using=``; the old settings
warn until Django 7.0 removes them. A project on 6.1 configures MAILERS, and
its replies go through the mailer MAIL_REPLY_MAILER names (``"default"``
unless the project keeps a separate one for automatic mail). Before 6.1
there is one mailer, ``EMAIL_BACKEND``, and MAIL_REPLY_MAILER means nothing.
This module is the one place that knows there are two.

Nothing here passes ``fail_silently``: Django 6.1 deprecates it, and our
callers catch and log a failure to send instead, which says more.
"""

from __future__ import annotations

from typing import Any

import django

from .conf import settings

#: Whether this Django picks mailers by alias (``MAILERS``, ``using=``).
HAS_MAILERS = django.VERSION >= (6, 1)


def reply_mailer_alias() -> str | None:
    """The MAILERS alias replies go through; None before Django 6.1."""
    return settings.MAIL_REPLY_MAILER if HAS_MAILERS else None


def get_mailer() -> Any:
    """
    A connection to the mailer replies go through: ``mailers[MAIL_REPLY_MAILER]``
    on Django 6.1+, the ``EMAIL_BACKEND`` connection before.
    """
    if HAS_MAILERS:
        from django.core.mail import mailers

        return mailers[settings.MAIL_REPLY_MAILER]
    from django.core.mail import get_connection

    return get_connection()


def send(message) -> int:
    """
    Send ``message`` (a reply or a notice) now, through the reply mailer.
    A message the view gave a connection of its own (``connection=``,
    deprecated by Django 6.1 but still honoured) goes through that one:
    Django refuses ``using=`` beside it.
    """
    if HAS_MAILERS and getattr(message, "_connection", None) is None:
        return message.send(using=settings.MAIL_REPLY_MAILER)
    return message.send()


def mail_admins(subject: str, body: str) -> None:
    """
    Tell ADMINS, through Django's default mailer as Django's own error mail
    does (``AdminEmailHandler``). Raises what the mailer raises: the caller
    logs it, so a mail server that is down is not also a silent one.
    """
    from django.core.mail import mail_admins

    mail_admins(subject, body)
