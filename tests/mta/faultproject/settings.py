"""
Settings of the fault-injection project. The run's generated settings module
imports these and adds the database, MTA_RECORD_DIR (where the ledger goes),
FAULT_SEED, and mailserver.store to INSTALLED_APPS when the run has the store.
"""

SECRET_KEY = "django-mailserver-fault-run-only"
DEBUG = False
ALLOWED_HOSTS: list[str] = []
INSTALLED_APPS = ["mailserver", "faultproject"]
DATABASES: dict = {}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

ROOT_MAILCONF = "faultproject.mailbox"
# What a careful project does without the store: the view's rows and the
# decision to reply commit together. The duplicates a run without the store
# shows are then the ones only idempotency removes.
MAIL_ATOMIC_REQUESTS = True

# An outgoing SMTP server that is down for a fifth of the sends (backends.py).
EMAIL_BACKEND = "faultproject.backends.FlakyEmailBackend"
# The outbox retries soon, so that sendreplies can drain it within the run.
MAIL_OUTBOX_RETRY_DELAY = 1
MAIL_OUTBOX_MAX_RETRY_DELAY = 2
# A reply claimed by a process that was then killed is free again after
# this; a send here takes milliseconds.
MAIL_OUTBOX_LEASE = 5

# runmailserver: one worker per delivery Postfix makes at once.
MAIL_SERVER_WORKERS = 20

FAULT_SEED = 8
MTA_RECORD_DIR = None
