"""
Who sent the message, as far as it can be proved.

A From address is whatever the sender typed: anyone can forge it. So
:class:`SenderAuthenticationMiddleware` logs in the user behind the From
address only when that address is proved, one of two ways:

- the sender is verified (``request.sender_verified``): DMARC passes for the
  From domain, or a DKIM signature aligned with it does, by the trusted
  Authentication-Results of your MTA or by in-process verification (see
  :mod:`mailserver.authresults`);
- the message came to a signed reply address made for that sender
  (``reverse(..., sign=True, bind=address)``): only someone who received
  our mail at that address knows it (see :mod:`mailserver.signing`).

Otherwise ``request.user`` is ``AnonymousUser``.
"""

from __future__ import annotations

import functools

from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.backends import BaseBackend
from django.contrib.auth.models import AnonymousUser
from django.utils.deprecation import MiddlewareMixin
from django.utils.functional import SimpleLazyObject

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


def proved_sender(request) -> str | None:
    """
    The sender's address when it is proved: the address a signed reply
    address was bound to, else a verified From address; None otherwise.
    """
    signature = getattr(request, "signature", None)
    if signature is not None and signature.bound:
        return signature.bound
    if request.sender_verified:
        return request.from_email or None
    return None


def get_user(request):
    """The user behind the proved sender, or AnonymousUser."""
    address = proved_sender(request)
    user = authenticate(request, sender_email=address) if address else None
    return user or AnonymousUser()


class SenderAuthenticationMiddleware(MiddlewareMixin):
    """
    Sets ``request.user``: the user behind a proved sender (see the module's
    docstring), else ``AnonymousUser``. Lazily, as Django's
    AuthenticationMiddleware does: the user is looked up when first used,
    by which time the token of a signed reply address has been checked.
    """

    def process_request(self, request) -> None:
        request.user = SimpleLazyObject(lambda: get_user(request))


def login_required(view):
    """Refuse mail from senders who are not known users (5.7.1)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            raise PermissionDenied(f"<{request.from_email or request.sender}>: sender not allowed")
        return view(request, *args, **kwargs)

    return wrapper


def verified_sender_required(view):
    """
    Refuse mail whose From address is not verified (5.7.1); the bounce says
    why, as in ``sender not verified (DMARC fail for example.org)``.
    """

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.sender_verified:
            raise PermissionDenied(
                f"<{request.from_email or request.sender}>: sender not verified "
                f"({request.sender_verified_reason})"
            )
        return view(request, *args, **kwargs)

    return wrapper
