"""Built-in mail middleware, in today's Django style: a factory taking get_response."""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404

from .response import EmailForbiddenResponse, EmailNotFoundResponse


class MiddlewareMixin:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)


class CommonMiddleware(MiddlewareMixin):
    """
    Lets views use Django's own shortcuts: ``get_object_or_404()`` and
    ``Http404`` mean the mailbox does not exist (5.1.1), Django's
    ``PermissionDenied`` that the sender may not write to it (5.7.1).
    """

    def process_exception(self, request, exception):
        if isinstance(exception, (Http404, ObjectDoesNotExist)):
            return EmailNotFoundResponse(f"<{request.recipient}>: no such mailbox")
        if isinstance(exception, DjangoPermissionDenied):
            return EmailForbiddenResponse(str(exception) or None)
        return None
