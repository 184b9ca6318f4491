from mailserver import EmailIgnoreResponse
from mailserver.auth import login_required, verified_sender_required


def record(request, **kwargs):
    return EmailIgnoreResponse()


@login_required
def staff_only(request):
    return EmailIgnoreResponse()


@verified_sender_required
def verified_only(request):
    return EmailIgnoreResponse()
