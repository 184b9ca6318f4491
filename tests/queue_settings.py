"""
The store's test settings in queued mode, for real processes: tasks on
django-tasks-db's DatabaseBackend, in the same database, run by its
db_worker command.
"""

import os

from tests.store_settings import *  # noqa: F403
from tests.store_settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "django_tasks_db"]
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
MAIL_STORE_PROCESSING = os.environ.get("MAILSERVER_TEST_STORE_PROCESSING", "queued")
# Short, so that a test sees a dead worker's message taken over, and a
# retry come, in seconds.
MAIL_STORE_LEASE = float(os.environ.get("MAILSERVER_TEST_STORE_LEASE", "600"))
MAIL_STORE_RETRY_DELAY = float(os.environ.get("MAILSERVER_TEST_STORE_RETRY_DELAY", "300"))
