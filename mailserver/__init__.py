"""
django-mailserver: inbound e-mail for Django, routed like HTTP requests.

Importing this package is cheap: the public names below load on first use,
so the pipe's entry point does not pay for Django or the email package
before it has a message to dispatch.
"""

from typing import TYPE_CHECKING

__version__ = "0.1.0"

_LAZY = {
    "EmailResponse": "mailserver.response",
    "EmailIgnoreResponse": "mailserver.response",
    "EmailRejectResponse": "mailserver.response",
    "EmailDeferResponse": "mailserver.response",
    "EmailDiscardResponse": "mailserver.response",
    "EmailRequest": "mailserver.request",
    "Envelope": "mailserver.envelope",
    "Outcome": "mailserver.status",
    "dispatch": "mailserver.handlers",
    "resolve": "mailserver.resolvers",
    "reverse": "mailserver.resolvers",
}

__all__ = [  # noqa: RUF022 - the order of _LAZY
    "EmailResponse",
    "EmailIgnoreResponse",
    "EmailRejectResponse",
    "EmailDeferResponse",
    "EmailDiscardResponse",
    "EmailRequest",
    "Envelope",
    "Outcome",
    "dispatch",
    "resolve",
    "reverse",
    "__version__",
]

if TYPE_CHECKING:  # pragma: no cover
    from .envelope import Envelope
    from .handlers import dispatch
    from .request import EmailRequest
    from .resolvers import resolve, reverse
    from .response import (
        EmailDeferResponse,
        EmailDiscardResponse,
        EmailIgnoreResponse,
        EmailRejectResponse,
        EmailResponse,
    )
    from .status import Outcome


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mailserver' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
