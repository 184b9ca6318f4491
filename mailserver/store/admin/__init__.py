"""
mailserver.store in the Django admin, registered on ``admin.site``: the
inbound messages (a change list, a page per message, replay, reroute,
incinerate, and the conductor) and the reply outbox (resend). A project
with an admin site of its own registers them there::

    from mailserver.store.admin import InboundMessageAdmin, OutboundMessageAdmin
    from mailserver.store.models import InboundMessage, OutboundMessage

    site.register(InboundMessage, InboundMessageAdmin)
    site.register(OutboundMessage, OutboundMessageAdmin)
"""

from django.contrib import admin

from ..models import InboundMessage, OutboundMessage
from .inbound import InboundMessageAdmin
from .outbound import OutboundMessageAdmin

__all__ = ["InboundMessageAdmin", "OutboundMessageAdmin"]

admin.site.register(InboundMessage, InboundMessageAdmin)
admin.site.register(OutboundMessage, OutboundMessageAdmin)
