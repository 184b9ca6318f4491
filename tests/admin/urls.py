"""
The admin, and two pages of the browser test's own: a beacon that counts
what a hostile message's HTML manages to request, and a control page that
shows that HTML with no protection at all (so that the beacon is known to
count when something does run).
"""

import threading

from django.contrib import admin
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

HITS: list[str] = []
_lock = threading.Lock()

# A 1x1 transparent GIF: what a tracking pixel serves.
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


@csrf_exempt
def beacon(request, name):
    with _lock:
        HITS.append(name)
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Access-Control-Allow-Origin"] = "*"
    return response


def control(request, pk):
    """The stored HTML body served as a careless admin would: live, in the site's origin."""
    from mailserver.store.admin.display import StoredMessage, read_raw
    from mailserver.store.models import InboundMessage

    inbound = get_object_or_404(InboundMessage, pk=pk)
    return HttpResponse(StoredMessage(read_raw(inbound)).html_document())


urlpatterns = [
    path("admin/", admin.site.urls),
    path("beacon/<str:name>", beacon),
    path("control/<int:pk>/", control),
]
