"""System checks of the store's configuration."""

from django.core.checks import Error, Warning, register


@register()
def check_store(app_configs, **kwargs):
    from django.apps import apps
    from django.conf import settings as django_settings
    from django.db import DEFAULT_DB_ALIAS, router

    if not apps.is_installed("mailserver.store"):
        return []  # registered once, and a test may have uninstalled it since

    from ..conf import settings
    from .models import InboundMessage
    from .storage import ALIAS

    problems = []
    if ALIAS not in getattr(django_settings, "STORAGES", {}) and not settings.MAIL_STORE_ROOT:
        problems.append(
            Error(
                "mailserver.store has nowhere to keep messages.",
                hint=f'Set MAIL_STORE_ROOT to a private directory, or define STORAGES["{ALIAS}"].',
                id="mailserver_store.E001",
            )
        )
    using = router.db_for_write(InboundMessage)
    if using != DEFAULT_DB_ALIAS:
        problems.append(
            Warning(
                f"The mail store is on the database {using!r}, mail views' transactions on "
                f"{DEFAULT_DB_ALIAS!r}: a view's work and its message's status do not commit "
                "together.",
                hint="Route mailserver_store to the database your mail views write to.",
                id="mailserver_store.W001",
            )
        )
    return problems
