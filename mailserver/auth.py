"""
Who sent the message, as far as the message can tell.

A From address is whatever the sender typed: anyone can forge it. Treat
``request.user`` set from it as a claim, not a proof, unless the mail server
in front of Django checked the sender (SPF, DKIM and DMARC with the result
in a trusted header, or authenticated submission). Guard with it only what a
forged message could not abuse: a reply sent to the real owner of the
address is safe; acting on a forged command is not.
"""

from __future__ import annotations

import functools

from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.backends import BaseBackend
from django.contrib.auth.models import AnonymousUser
from django.utils.deprecation import MiddlewareMixin

from .exceptions import PermissionDenied


class EmailBackend(BaseBackend):
    """Finds the active user whose e-mail address is the sender's."""

    def authenticate(self, request, sender_email=None, **kwargs):
        if not sender_email:
            return None
        UserModel = get_user_model()  # noqa: N806
        field = UserModel.get_email_field_name()
        users = list(UserModel._default_manager.filter(**{f"{field}__iexact": sender_email})[:2])
        # Two accounts share the address: which one wrote is unknown.
        if len(users) != 1 or not getattr(users[0], "is_active", True):
            return None
        return users[0]

    def get_user(self, user_id):
        UserModel = get_user_model()  # noqa: N806
        try:
            return UserModel._default_manager.get(pk=user_id)
        except UserModel.DoesNotExist:
            return None


class SenderAuthenticationMiddleware(MiddlewareMixin):
    """Sets ``request.user`` from the From address, or ``AnonymousUser``."""

    def process_request(self, request) -> None:
        user = None
        if request.from_email:
            user = authenticate(request, sender_email=request.from_email)
        request.user = user or AnonymousUser()


def login_required(view):
    """Refuse mail from senders who are not known users (5.7.1)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            raise PermissionDenied(f"<{request.from_email or request.sender}>: sender not allowed")
        return view(request, *args, **kwargs)

    return wrapper
