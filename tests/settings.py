"""Settings for the test suite: a real SQLite database, the locmem mail outbox."""

import os
from pathlib import Path

from tests.mail import admins, mail_settings

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "tests-only"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "mailserver",
    "tests.mailapp",
]
if os.environ.get("MAILSERVER_TEST_DATABASE", "sqlite") == "postgres":
    # PostgreSQL at 127.0.0.1:5432, trust authentication (bin/test starts it).
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            # Tests that run real processes point this at a migrated database.
            "NAME": os.environ.get("MAILSERVER_TEST_DB", "mailserver"),
            "USER": os.environ.get("MAILSERVER_TEST_PG_USER", "postgres"),
            "HOST": os.environ.get("MAILSERVER_TEST_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("MAILSERVER_TEST_PG_PORT", "5432"),
            # The test run's own database: runs at once do not share one.
            "TEST": {"NAME": os.environ.get("MAILSERVER_TEST_PG_TEST_NAME")},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            # Tests that run real processes point this at a migrated file.
            "NAME": os.environ.get("MAILSERVER_TEST_DB", str(BASE_DIR / "test.sqlite3")),
            "OPTIONS": {"timeout": float(os.environ.get("MAILSERVER_TEST_DB_TIMEOUT", "5"))},
        }
    }
AUTHENTICATION_BACKENDS = ["mailserver.auth.EmailBackend"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# MAILERS on Django 6.1+, EMAIL_BACKEND before: neither warns on its Django.
globals().update(mail_settings("django.core.mail.backends.locmem.EmailBackend"))
ADMINS = admins("admin@example.com")

ROOT_MAILCONF = "tests.mailapp.mailconf"
MAILER_DAEMON_ADDRESS = "mailer-daemon@example.com"
# No CommonMiddleware: the handler maps Http404 and PermissionDenied itself.
MAIL_MIDDLEWARE = ["mailserver.auth.SenderAuthenticationMiddleware"]
