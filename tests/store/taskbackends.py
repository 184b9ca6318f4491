"""
The Tasks framework of this Django (django.tasks from 6.0, the django-tasks
backport before), and a backend of the tests' own.
"""

from importlib.util import find_spec

FRAMEWORK = "django.tasks" if find_spec("django.tasks") else "django_tasks"

if FRAMEWORK == "django_tasks":
    # What django.test does for django.tasks on Django 6: the backends are
    # built again when a test changes TASKS.
    import django_tasks.signals  # noqa: F401
    from django_tasks.backends.dummy import DummyBackend
else:  # pragma: no cover - Django 6
    from django.tasks.backends.dummy import DummyBackend


def backend_path(name: str) -> str:
    return f"{FRAMEWORK}.backends.{name.lower().removesuffix('backend')}.{name}"


class UndeferringBackend(DummyBackend):
    """Keeps its tasks as the dummy backend does, but cannot run one later."""

    supports_defer = False
