"""A small help desk that takes tickets by mail."""

from pathlib import Path

import django

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "example-only-not-secret"
DEBUG = True
USE_TZ = True
ALLOWED_HOSTS = []
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "mailserver",
    # Every message stored before it is answered, and handled once however
    # often it comes: retries open no second ticket. See README, "The store".
    "mailserver.store",
    "tickets",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Replies are printed instead of sent, so the demo shows them. Django 6.1
# configures mail as MAILERS (EMAIL_BACKEND warns there, and goes in 7.0);
# replies take the "default" mailer unless MAIL_REPLY_MAILER names another.
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

ROOT_MAILCONF = "exampleproject.mailconf"
MAILER_DAEMON_ADDRESS = "mailer-daemon@example.com"
MAIL_ATOMIC_REQUESTS = True
# Where the store keeps raw messages: private, not under MEDIA_ROOT.
MAIL_STORE_ROOT = BASE_DIR / "mailstore"
