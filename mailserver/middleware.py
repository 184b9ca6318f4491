"""
Built-in mail middleware.

Mail middleware is Django middleware: a factory taking ``get_response``,
with optional ``process_view`` and ``process_exception`` hooks, and
``process_request``/``process_response`` through Django's own
:class:`~django.utils.deprecation.MiddlewareMixin`, re-exported here for
code that imported it from this module.
"""

from __future__ import annotations

from django.core.exceptions import MiddlewareNotUsed
from django.utils.deprecation import MiddlewareMixin

__all__ = ["CommonMiddleware", "MiddlewareMixin"]


class CommonMiddleware(MiddlewareMixin):
    """
    Nothing left to do: the handler itself maps Django's ``Http404``
    (``get_object_or_404()``) to 5.1.1 and ``PermissionDenied`` to 5.7.1,
    with or without middleware, as Django's handler maps them to 404 and
    403. Kept so that settings listing it still load; it takes itself out
    of the chain when the chain is built, so it costs nothing per message.
    A subclass that adds hooks of its own stays in.
    """

    def __init__(self, get_response):
        if type(self) is CommonMiddleware:
            raise MiddlewareNotUsed("the handler maps Http404 and PermissionDenied itself")
        super().__init__(get_response)
