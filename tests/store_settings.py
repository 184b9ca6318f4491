"""The test settings with mailserver.store installed: for real processes, makemigrations, mypy."""

import os

from tests.mail import mail_settings
from tests.settings import *  # noqa: F403
from tests.settings import BASE_DIR, INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "mailserver.store"]
ROOT_MAILCONF = "tests.store.mailconf"
MAIL_STORE_ROOT = os.environ.get("MAIL_STORE_ROOT", str(BASE_DIR / "mailstore"))
# Replies are written as files, one per message sent; the backend fails or
# pauses when the test asks it to (see tests/store/backends.py).
globals().update(mail_settings("tests.store.backends.EmailBackend"))
STORE_TEST_SENT = os.environ.get("MAILSERVER_TEST_SENT", str(BASE_DIR / "sent"))
MAIL_OUTBOX_LEASE = float(os.environ.get("MAILSERVER_TEST_LEASE", "600"))
MAIL_OUTBOX_RETRY_DELAY = float(os.environ.get("MAILSERVER_TEST_RETRY_DELAY", "60"))
# Fault injection, for real processes: where a view or the backend stops
# for good ("view", "send"), the backend failing ("fail"), and where the
# flaky view keeps its "failed once" flags.
STORE_TEST_PAUSE = os.environ.get("MAILSERVER_TEST_PAUSE", "")
STORE_TEST_MAIL = os.environ.get("MAILSERVER_TEST_MAIL", "")
STORE_TEST_FLAGS = os.environ.get("MAILSERVER_TEST_FLAGS", str(BASE_DIR / "flags"))
