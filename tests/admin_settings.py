"""
The store's admin, for tests/admin: the test settings with mailserver.store,
the admin and what it needs. Run as ``pytest --ds=tests.admin_settings
tests/admin`` (bin/test does); the suite's own settings leave tests/admin out.

The test database is a file (on SQLite), not memory: the browser test's
django-mailpipe, a process of its own, writes to the database the live
server reads.
"""

import os

from tests.store_settings import *  # noqa: F403
from tests.store_settings import BASE_DIR, DATABASES, INSTALLED_APPS

INSTALLED_APPS = [
    *INSTALLED_APPS,
    "django.contrib.admin",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
ROOT_URLCONF = "tests.admin.urls"
STATIC_URL = "/static/"
# Staff log in with a password; mail senders through the app's own backend.
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "mailserver.auth.EmailBackend",
]
ROOT_MAILCONF = "tests.admin.mailconf"
# The view of fragile@ has a bug until the test deploys the fix.
ADMIN_TEST_FIXED = bool(os.environ.get("MAILSERVER_TEST_FIXED"))

DATABASES = {"default": {**DATABASES["default"]}}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("MAILSERVER_TEST_ADMIN_DB", str(BASE_DIR / "admin-test.sqlite3"))
    }
