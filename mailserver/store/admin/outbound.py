"""The reply outbox in the admin: what was sent, what waits, what failed; resend."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.text import Truncator

from ..models import OutboundMessage
from .base import StoreAdmin, badge
from .display import StoredMessage, download_response, html_response

TEMPLATES = "admin/mailserver_store/"


class OutboundMessageAdmin(StoreAdmin):
    list_display = (
        "created",
        "kind",
        "to_display",
        "subject_display",
        "status_display",
        "attempts",
        "sent",
        "inbound_link",
    )
    list_display_links = ("subject_display",)
    list_filter = ("status", "kind", ("created_at", admin.DateFieldListFilter))
    search_fields = ("recipients", "sender", "subject", "message_id")
    search_help_text = "Recipients, sender, subject or Message-ID (a part of any)."
    ordering = ("-created_at", "-pk")
    actions = ["resend_selected"]

    def get_queryset(self, request):
        # The bytes of each reply stay in the database until a page shows one.
        return super().get_queryset(request).defer("raw")

    @admin.display(description="written", ordering="created_at")
    def created(self, obj):
        return date_format(timezone.localtime(obj.created_at), "Y-m-d H:i:s")

    @admin.display(description="sent", ordering="sent_at")
    def sent(self, obj):
        return date_format(timezone.localtime(obj.sent_at), "Y-m-d H:i:s") if obj.sent_at else "—"

    @admin.display(description="to")
    def to_display(self, obj):
        return Truncator(", ".join(obj.recipients)).chars(60)

    @admin.display(description="subject", ordering="subject")
    def subject_display(self, obj):
        return Truncator(obj.subject).chars(70) or "(no subject)"

    @admin.display(description="status", ordering="status")
    def status_display(self, obj):
        return badge(obj.status)

    @admin.display(description="in reply to")
    def inbound_link(self, obj):
        if obj.inbound_id is None:
            return "—"
        url = reverse(
            f"{self.admin_site.name}:mailserver_store_inboundmessage_change",
            args=[obj.inbound_id],
        )
        return format_html('<a href="{}">message #{}</a>', url, obj.inbound_id)

    def has_resend_permission(self, request):
        return self.allowed(request, "resend_outboundmessage")

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/raw/", view(self.raw_view), name=f"{name}_raw"),
            path("<path:object_id>/html/", view(self.html_view), name=f"{name}_html"),
            path("<path:object_id>/resend/", view(self.resend_view), name=f"{name}_resend"),
            *super().get_urls(),
        ]

    def url(self, what: str, *args) -> str:
        return reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_{what}",
            args=args,
        )

    def get_record(self, request, object_id):
        reply = super().get_record(request, object_id)
        # The page shows the bytes: read them now (get_queryset defers them).
        reply.raw = bytes(
            OutboundMessage.objects.using(reply._state.db)
            .values_list("raw", flat=True)
            .get(pk=reply.pk)
        )
        return reply

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The reply page: envelope, status, the message as it is (or was) sent."""
        reply = self.get_record(request, object_id)
        return self.page(
            request,
            TEMPLATES + "outboundmessage/message.html",
            title=reply.subject or "(no subject)",
            reply=reply,
            original=reply,
            message=StoredMessage(reply.raw),
            can_resend=self.has_resend_permission(request)
            and reply.status != OutboundMessage.Status.SENT,
            raw_url=self.url("raw", reply.pk),
            html_url=self.url("html", reply.pk),
            resend_url=self.url("resend", reply.pk),
            history_url=self.url("history", reply.pk),
            inbound_url=reverse(
                f"{self.admin_site.name}:mailserver_store_inboundmessage_change",
                args=[reply.inbound_id],
            )
            if reply.inbound_id
            else None,
        )

    def raw_view(self, request, object_id):
        reply = self.get_record(request, object_id)
        return download_response(reply.raw, f"reply-{reply.pk}.eml")

    def html_view(self, request, object_id):
        document = StoredMessage(self.get_record(request, object_id).raw).html_document()
        if document is None:
            raise Http404("This reply has no HTML body.")
        return html_response(document)

    def resend_view(self, request, object_id):
        reply = self.get_record(request, object_id)
        if not self.has_resend_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            self.resend_and_report(request, [reply])
        return HttpResponseRedirect(self.url("change", reply.pk))

    def resend_and_report(self, request, replies):
        from ..outbox import resend

        unsent = [r for r in replies if r.status != OutboundMessage.Status.SENT]
        if not unsent:
            self.message_user(request, "Nothing to resend: sent already.", messages.WARNING)
            return
        counts = resend([r.pk for r in unsent], using=unsent[0]._state.db)
        states = dict(
            OutboundMessage.objects.filter(pk__in=[r.pk for r in unsent]).values_list(
                "pk", "status"
            )
        )
        for reply in unsent:
            self.log(request, [reply], f"Resent: now {states.get(reply.pk, 'gone')}.")
        text = (
            f"Resent {len(unsent)}: {counts['sent']} sent, {counts['retry']} to be retried, "
            f"{counts['failed']} failed"
        )
        busy = len(unsent) - sum(counts.values())
        if busy:
            text += f", {busy} being sent by another sender"
        self.message_user(
            request,
            text + ".",
            messages.SUCCESS if counts["sent"] == len(unsent) else messages.WARNING,
        )

    @admin.action(permissions=["resend"], description="Resend the selected replies now")
    def resend_selected(self, request, queryset):
        if self.too_many(request, queryset):
            return None
        self.resend_and_report(request, list(queryset))
        return None
