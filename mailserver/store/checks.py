"""System checks of the store's configuration."""

from django.core.checks import CheckMessage, Error, Warning, register


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

    problems: list[CheckMessage] = []
    if ALIAS not in getattr(django_settings, "STORAGES", {}) and not settings.MAIL_STORE_ROOT:
        problems.append(
            Error(
                "mailserver.store has nowhere to keep messages.",
                hint=f'Set MAIL_STORE_ROOT to a private directory, or define STORAGES["{ALIAS}"].',
                id="mailserver_store.E001",
            )
        )
    limit = settings.MAIL_STORE_ROW_LIMIT
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        problems.append(
            Error(
                f"MAIL_STORE_ROW_LIMIT is {limit!r}: it must be a number of bytes.",
                hint="Messages up to this size are kept in their rows; 0 keeps all in files.",
                id="mailserver_store.E005",
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


@register()
def check_queued_processing(app_configs, **kwargs):
    """Queued processing needs the Tasks framework and a backend that runs tasks elsewhere."""
    from django.apps import apps

    if not apps.is_installed("mailserver.store"):
        return []

    from ..conf import settings

    mode = settings.MAIL_STORE_PROCESSING
    if mode not in ("inline", "queued"):
        return [
            Error(
                f"MAIL_STORE_PROCESSING is {mode!r}.",
                hint='Set it to "inline" or "queued".',
                id="mailserver_store.E002",
            )
        ]
    if mode != "queued":
        return []
    try:
        from . import tasks
    except ImportError as exc:
        return [
            Error(
                f"Queued processing needs Django's Tasks framework: {exc}.",
                hint="Use Django 6.0 or later, or install django-tasks "
                "(pip install django-mailserver[queue]).",
                id="mailserver_store.E003",
            )
        ]
    except Exception as exc:
        return [_no_backend(exc)]
    try:
        backend = tasks.configured(tasks.process_message).get_backend()
    except Exception as exc:
        return [_no_backend(exc)]
    name = type(backend).__name__
    if name in ("ImmediateBackend", "DummyBackend"):
        runs = "in the transport, while the MTA waits" if name == "ImmediateBackend" else "never"
        return [
            Warning(
                f"The mail store's tasks go to {name}: the views run {runs}.",
                hint="Set MAIL_STORE_TASK_BACKEND to a TASKS alias whose backend has workers.",
                id="mailserver_store.W002",
            )
        ]
    return []


def _no_backend(exc):
    from ..conf import settings

    return Error(
        f"The mail store's tasks cannot go to the TASKS alias "
        f"{settings.MAIL_STORE_TASK_BACKEND!r}, queue {settings.MAIL_STORE_TASK_QUEUE!r}: {exc}",
        hint="Set MAIL_STORE_TASK_BACKEND and MAIL_STORE_TASK_QUEUE to a backend and queue "
        "that TASKS defines.",
        id="mailserver_store.E004",
    )
