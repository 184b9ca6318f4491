"""
The store's tasks, for Django's Tasks framework: ``django.tasks`` from
Django 6.0, the ``django-tasks`` backport (``pip install
django-mailserver[queue]``) before it. This import is the only place that
knows there are two.

Each task is declared on MAIL_STORE_TASK_BACKEND and MAIL_STORE_TASK_QUEUE
as they are when this module is imported, and :func:`configured` applies
them again when a task is enqueued. A backend's worker (``manage.py
db_worker`` for django-tasks-db's DatabaseBackend) runs them; the backend
need not be durable across crashes, as :func:`.queue.sweep` hands a lost
message to the workers again.

Imported only in queued mode, by a worker, or by a project that enqueues
the periodic ones itself: inline processing never loads the framework.
"""

from __future__ import annotations

try:
    from django.tasks import task
except ImportError:  # Django < 6.0: the backport
    from django_tasks import task  # type: ignore[no-redef]

from ..conf import settings


def configured(declared):
    """``declared`` on the backend and queue the settings name now."""
    return declared.using(
        backend=settings.MAIL_STORE_TASK_BACKEND, queue_name=settings.MAIL_STORE_TASK_QUEUE
    )


_options = {
    "backend": settings.MAIL_STORE_TASK_BACKEND,
    "queue_name": settings.MAIL_STORE_TASK_QUEUE,
}


@task(**_options)
def process_message(message_id: int, mailconf: str | None = None) -> str:
    """
    Run the view of a stored message once; see :func:`.queue.run`.
    ``mailconf`` is the one the transport dispatched with, if not ROOT_MAILCONF.
    """
    from .queue import run

    return run(message_id, mailconf=mailconf)


@task(**_options)
def sweep() -> dict[str, int]:
    """Hand lost and due messages to the workers again; see :func:`.queue.sweep`."""
    from .queue import sweep

    return sweep()


@task(**_options)
def send_replies() -> dict[str, int]:
    """Send the replies in the outbox that are due (``manage.py sendreplies``, once)."""
    from .outbox import send_due

    return send_due()


@task(**_options)
def purge_mail() -> dict[str, int]:
    """Delete what MAIL_STORE_RETENTION lets go (``manage.py purgemail``)."""
    from .retention import purge

    purged = purge()
    return {"messages": purged.messages, "files": len(purged.files)}
