"""The test settings with a size limit small enough to sit on either side of cheaply."""

from tests.settings import *  # noqa: F403

MAIL_MAX_MESSAGE_SIZE = 10_000
