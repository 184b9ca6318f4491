"""A settings module that fails to import, as a typo in production would."""

from tests.settings import *  # noqa: F403

raise RuntimeError("settings typo")
