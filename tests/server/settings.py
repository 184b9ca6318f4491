"""
Settings for runmailserver and django-mailpipe run as real processes by the
server tests and by benchmarks/server.py: no middleware that needs the
database, so a trivial view costs only what the server costs.
"""

import os
import tempfile
from pathlib import Path

from tests.mail import mail_settings

SECRET_KEY = "tests-only"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "mailserver",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get(
            "MAILSERVER_TEST_DB",
            str(Path(tempfile.gettempdir()) / "mailserver-server-tests.sqlite3"),
        ),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
globals().update(mail_settings("django.core.mail.backends.locmem.EmailBackend"))

ROOT_MAILCONF = "tests.server.mailconf"
MAIL_MIDDLEWARE = ["mailserver.middleware.CommonMiddleware"]
MAIL_MAX_MESSAGE_SIZE = int(os.environ.get("MAILSERVER_TEST_MAX_SIZE", 1024 * 1024))
