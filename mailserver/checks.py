"""System checks: a broken mailconf is found by ``manage.py check``, not by a message."""

from __future__ import annotations

import re
from collections import Counter
from types import ModuleType

from django.core import checks

from .conf import settings


@checks.register("mailserver")
def check_mailconf(app_configs=None, **kwargs):
    mailconf = settings.ROOT_MAILCONF
    if not mailconf:
        return [
            checks.Error(
                "ROOT_MAILCONF is not set.",
                hint="Name the module that holds your address patterns, like ROOT_URLCONF.",
                id="mailserver.E001",
            )
        ]
    from .resolvers import MailboxResolver, get_resolver

    resolver = get_resolver(mailconf)
    errors: list[checks.CheckMessage] = []
    names: Counter[str] = Counter()
    seen_modules = set()

    def walk(resolver, namespaces):
        try:
            patterns = resolver.mailbox_patterns
        except Exception as exc:
            errors.append(
                checks.Error(
                    f"The mailconf {resolver.mailconf_name!r} cannot be loaded: {exc}",
                    id="mailserver.E002",
                )
            )
            return
        module = resolver.mailconf_module
        if isinstance(module, ModuleType) and module.__name__ not in seen_modules:
            seen_modules.add(module.__name__)
            errors.extend(check_one_pattern_list(module))
        for pattern in patterns:
            try:
                re.compile(pattern.regex_string)
            except re.error as exc:
                errors.append(
                    checks.Error(
                        f"{pattern!r} has an invalid regular expression: {exc}",
                        id="mailserver.E003",
                    )
                )
            if isinstance(pattern, MailboxResolver):
                walk(pattern, namespaces + ((pattern.namespace,) if pattern.namespace else ()))
                continue
            try:
                pattern.callback  # noqa: B018 - imports the view
            except Exception as exc:
                errors.append(
                    checks.Error(
                        f"The view of {pattern!r} cannot be imported: {exc}",
                        id="mailserver.E004",
                    )
                )
            if pattern.name:
                names[":".join((*namespaces, pattern.name))] += 1

    walk(resolver, ())
    for name, count in names.items():
        if count > 1:
            errors.append(
                checks.Warning(
                    f"The mail route name {name!r} is used {count} times; reverse() "
                    "will only find the first that fits.",
                    id="mailserver.W001",
                )
            )
    return errors


def check_one_pattern_list(module: ModuleType) -> list[checks.CheckMessage]:
    """
    A mailconf module's patterns are ``mailpatterns``, else ``urlpatterns``
    (the original API's name): a module defining both has one list read and
    the other silently ignored.
    """
    if getattr(module, "mailpatterns", None) is None or not hasattr(module, "urlpatterns"):
        return []
    return [
        checks.Warning(
            f"The mailconf {module.__name__!r} defines both 'mailpatterns' and "
            "'urlpatterns'; only 'mailpatterns' is read.",
            hint=(
                "Keep one list: move the routes of 'urlpatterns' into 'mailpatterns', or "
                "rename the list. If 'urlpatterns' holds the project's URL patterns, give "
                "the mail patterns a module of their own."
            ),
            obj=module.__name__,
            id="mailserver.W002",
        )
    ]


@checks.register("mailserver")
def check_reply_mailer(app_configs=None, **kwargs):
    """
    MAIL_REPLY_MAILER names a mailer that exists (Django 6.1+), or is left
    alone (before 6.1, where it would be ignored): either mistake would
    otherwise show only when the first reply cannot be sent.
    """
    from django.conf import settings as django_settings

    from .mailers import HAS_MAILERS

    alias = settings.MAIL_REPLY_MAILER
    if not HAS_MAILERS:
        if alias == "default":
            return []
        return [
            checks.Warning(
                f"MAIL_REPLY_MAILER is {alias!r}, but this Django has no MAILERS: replies go "
                "through EMAIL_BACKEND.",
                hint="Remove the setting, or upgrade to Django 6.1 or later.",
                id="mailserver.W003",
            )
        ]
    from django.core.mail import mailers

    # Without MAILERS, Django 6.1 builds "default" from EMAIL_BACKEND.
    if alias in mailers or (alias == "default" and not hasattr(django_settings, "MAILERS")):
        return []
    return [
        checks.Error(
            f"MAIL_REPLY_MAILER is {alias!r}, which MAILERS does not define: no reply "
            "could be sent.",
            hint=f"Add {alias!r} to MAILERS, or set MAIL_REPLY_MAILER to one of its aliases.",
            id="mailserver.E005",
        )
    ]
