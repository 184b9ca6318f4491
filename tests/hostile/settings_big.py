"""The test settings with room for the 25 MB attachment (generate.attachment)."""

from tests.settings import *  # noqa: F403

MAIL_MAX_MESSAGE_SIZE = 40 * 1024 * 1024
