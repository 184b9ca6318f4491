"""
Settings of the tiny project the MTA tests deliver to.

The harness copies this package next to a generated settings module
(``mta_run_settings``) that imports everything from here and adds
MTA_RECORD_DIR, the directory where the views write what they saw.
"""

SECRET_KEY = "django-mailserver-mta-tests-only"
DEBUG = False
ALLOWED_HOSTS: list[str] = []
INSTALLED_APPS = ["mailserver"]
DATABASES: dict = {}
USE_TZ = True
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

ROOT_MAILCONF = "mtaproject.mailbox"
# Small, so that a test message can go over it cheaply.
MAIL_MAX_MESSAGE_SIZE = 20_000
# Short, so the slow@ view runs into it quickly; far above a normal run.
MAIL_PIPE_DEADLINE = 5

# runmailserver (the warm path tests): a few threads are plenty here.
MAIL_SERVER_WORKERS = 4
# How long the pause@ view takes; the server is stopped while it runs.
MTA_PAUSE_SECONDS = 3

MTA_RECORD_DIR = None

# The authserv-id the milters of tests/mta/test_milters.py write.
MAIL_AUTHSERV_IDS = ["mx.mail.test"]
