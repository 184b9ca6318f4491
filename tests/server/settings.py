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

# Tests and benchmarks that run the server as a process set its limits
# through the environment, under the settings' own names.
for _name in (
    "MAIL_SERVER_TIMEOUT",
    "MAIL_SERVER_MIN_DATA_RATE",
    "MAIL_SERVER_SESSION_LIMIT",
    "MAIL_SERVER_JUNK_COMMAND_LIMIT",
    "MAIL_SERVER_HARD_ERROR_LIMIT",
    "MAIL_SERVER_DEADLINE",
    "MAIL_SERVER_DRAIN_TIMEOUT",
    "MAIL_SERVER_WORKERS",
):
    if _name in os.environ:
        _value = os.environ[_name]
        globals()[_name] = float(_value) if "." in _value else int(_value)

# The line per recipient, to a file, when a test asks for it (the pipe logs
# through LOGGING; runmailserver without LOGGING logs to standard error).
if os.environ.get("MAILSERVER_TEST_LOG"):
    LOGGING = {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "filename": os.environ["MAILSERVER_TEST_LOG"],
                "encoding": "utf-8",
            },
        },
        "loggers": {"mailserver": {"handlers": ["file"], "level": "INFO"}},
    }
