"""
Testing tools, after django.test: a Client that sends messages through the
dispatch core, a RequestFactory that builds requests to call views with,
and build_message() to write the messages.

The names load on first use: pytest imports this package for its plugin
(mailserver.test.plugin) in every run, Django project or not.
"""

from typing import TYPE_CHECKING

_LAZY = {
    "Client": "mailserver.test.client",
    "RequestFactory": "mailserver.test.client",
    "build_message": "mailserver.test.messages",
}

__all__ = ["Client", "RequestFactory", "build_message"]

if TYPE_CHECKING:  # pragma: no cover
    from .client import Client, RequestFactory
    from .messages import build_message


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mailserver.test' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
