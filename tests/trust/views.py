"""Views of the reply-by-mail tests: each records that it ran, and what it saw."""

from mailserver import EmailIgnoreResponse
from mailserver.auth import login_required, verified_sender_required

calls: list[dict] = []


def record(request, **kwargs):
    calls.append(
        {
            "route": request.resolver_match.route_name,
            "kwargs": kwargs,
            "signature": request.signature,
            "user": request.user.get_username() if hasattr(request, "user") else None,
        }
    )
    return EmailIgnoreResponse()


@login_required
def staff_only(request):
    calls.append({"route": "staff", "user": request.user.get_username()})
    return EmailIgnoreResponse()


@verified_sender_required
def verified_only(request):
    calls.append({"route": "verified", "reason": request.sender_verified_reason})
    return EmailIgnoreResponse()
