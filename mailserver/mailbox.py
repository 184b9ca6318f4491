"""
The vocabulary of a mailconf module.

Both styles work, and can be mixed::

    # The original API
    from mailserver.mailbox import *
    urlpatterns = patterns('',
        (r'@bugs.example.com', include('myapp.mailbox')),
    )

    # The modern idiom
    from mailserver.mailbox import include, mailbox
    mailpatterns = [
        mailbox(r'@bugs\\.example\\.com$', include('tickets.mailbox', namespace='tickets')),
    ]
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from types import ModuleType
from typing import Any

from .resolvers import MailboxPattern, MailboxResolver, Signed

__all__ = ["include", "mailbox", "patterns"]


def include(
    arg: str | ModuleType | list | tuple, namespace: str | None = None
) -> tuple[Any, str | None, str | None]:
    """
    Hand the rest of the address to another list of patterns: a dotted module
    path, a module, a list, or a ``(patterns, app_name)`` pair. The module's
    ``app_name`` names its application namespace, as in Django.
    """
    app_name = None
    if isinstance(arg, tuple):
        try:
            arg, app_name = arg
        except ValueError:
            raise ValueError(
                "Passing a tuple to include() needs exactly (patterns, app_name)."
            ) from None
    if isinstance(arg, str):
        arg = import_module(arg)
    app_name = getattr(arg, "app_name", app_name)
    if namespace and not app_name:
        # Django refuses this; a mailconf is small enough that the instance
        # namespace may stand for the application's name too.
        app_name = namespace
    return arg, app_name, namespace or app_name


def mailbox(
    regex: str,
    view: str | Callable | tuple,
    kwargs: dict[str, Any] | None = None,
    name: str | None = None,
    *,
    signed: Signed = False,
) -> MailboxPattern | MailboxResolver:
    """
    One route: ``view`` is a callable, a dotted path, or ``include(...)``.

    ``signed=True`` makes the route take only addresses made by
    ``reverse(..., sign=True)``; any other is refused with 5.7.1 before a
    view runs (see :mod:`mailserver.signing`). On an ``include()`` it
    covers every route inside.
    """
    if isinstance(view, (list, tuple)):
        mailconf, app_name, namespace = view if isinstance(view, tuple) else (view, None, None)
        return MailboxResolver(
            regex, mailconf, kwargs, app_name=app_name, namespace=namespace, signed=signed
        )
    if isinstance(view, str) or callable(view):
        return MailboxPattern(regex, view, kwargs, name, signed=signed)
    raise TypeError(f"view must be a callable, a dotted path or include(); got {view!r}")


def patterns(prefix: str, *args) -> list:
    """
    The original API: tuples ``(regex, view[, kwargs[, name]])`` whose string
    views are taken relative to ``prefix``.
    """
    result = []
    for item in args:
        if isinstance(item, (list, tuple)):
            regex, view, *rest = item
            if isinstance(view, str) and prefix:
                view = f"{prefix}.{view}"
            item = mailbox(regex, view, *rest)
        elif isinstance(item, MailboxPattern) and prefix and isinstance(item._callback, str):
            item._callback = f"{prefix}.{item._callback}"
        result.append(item)
    return result
