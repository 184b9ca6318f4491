"""
Inbound messages in the admin: the change list, the message page, and
what a person may do to a message (replay, reroute, incinerate), each under
its own permission and written to the admin log.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.text import Truncator

from ..models import InboundMessage
from .base import StoreAdmin, apart, badge, dispatching
from .display import StoredMessage, download_response, html_response, read_raw
from .forms import RerouteForm
from .lists import OutcomeFilter, RouteFilter, TransportFilter

TEMPLATES = "admin/mailserver_store/"


class InboundMessageAdmin(StoreAdmin):
    list_display = (
        "received",
        "envelope_display",
        "subject_display",
        "route_display",
        "status_display",
        "outcome_display",
        "attempts",
    )
    list_display_links = ("subject_display",)
    list_filter = (
        "status",
        OutcomeFilter,
        RouteFilter,
        TransportFilter,
        ("received_at", admin.DateFieldListFilter),
    )
    search_fields = ("sender", "recipient", "subject", "message_id")
    search_help_text = "Envelope sender or recipient, subject, or Message-ID (a part of any)."
    ordering = ("-received_at", "-pk")
    actions = ["replay_selected", "reroute_selected", "incinerate_selected"]
    change_list_template = TEMPLATES + "inboundmessage/change_list.html"

    # Columns ------------------------------------------------------------

    def get_queryset(self, request):
        # A small message's bytes are in its row: read when a page shows it.
        return super().get_queryset(request).defer("raw")

    @admin.display(description="received", ordering="received_at")
    def received(self, obj):
        when = timezone.localtime(obj.received_at)
        return format_html(
            '<span title="{}">{}</span>',
            date_format(when, "Y-m-d H:i:s T"),
            date_format(when, "Y-m-d H:i"),
        )

    @admin.display(description="envelope", ordering="recipient")
    def envelope_display(self, obj):
        return format_html(
            '{}<div class="mailstore-note">from {}</div>', obj.recipient, show_sender(obj.sender)
        )

    @admin.display(description="subject", ordering="subject")
    def subject_display(self, obj):
        return Truncator(obj.subject).chars(70) or "(no subject)"

    @admin.display(description="route", ordering="route")
    def route_display(self, obj):
        return obj.route or "—"

    @admin.display(description="status", ordering="status")
    def status_display(self, obj):
        return badge(obj.status)

    @admin.display(description="outcome", ordering="outcome")
    def outcome_display(self, obj):
        if not obj.outcome:
            return "—"
        # The row of the outcome table, whose words are short; the status
        # line as it was given (it may quote an address) when pointed at.
        return format_html(
            '<span title="{}">{} {}</span>',
            obj.status_text,
            obj.enhanced_code,
            obj.outcome.replace("_", " "),
        )

    # Permissions ----------------------------------------------------------

    def has_replay_permission(self, request):
        return self.allowed(request, "replay_inboundmessage")

    def has_reroute_permission(self, request):
        return self.allowed(request, "reroute_inboundmessage")

    def has_incinerate_permission(self, request):
        return self.allowed(request, "incinerate_inboundmessage")

    def has_conductor_permission(self, request):
        return self.allowed(request, "use_conductor")

    # Pages ------------------------------------------------------------------

    def get_urls(self):
        def view(function, dispatches=False):
            wrapped = self.admin_site.admin_view(function)
            return dispatching(wrapped) if dispatches else wrapped

        name = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                "conductor/",
                view(self.conductor_view, dispatches=True),
                name=f"{name}_conductor",
            ),
            path("<path:object_id>/raw/", view(self.raw_view), name=f"{name}_raw"),
            path("<path:object_id>/html/", view(self.html_view), name=f"{name}_html"),
            path(
                "<path:object_id>/attachments/<int:index>/",
                view(self.attachment_view),
                name=f"{name}_attachment",
            ),
            path(
                "<path:object_id>/replay/",
                view(self.replay_view, dispatches=True),
                name=f"{name}_replay",
            ),
            path(
                "<path:object_id>/reroute/",
                view(self.reroute_view, dispatches=True),
                name=f"{name}_reroute",
            ),
            path(
                "<path:object_id>/incinerate/",
                view(self.incinerate_view),
                name=f"{name}_incinerate",
            ),
            *super().get_urls(),
        ]

    def url(self, what: str, *args) -> str:
        return reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_{what}",
            args=args,
        )

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "conductor_url": self.url("conductor")
            if self.has_conductor_permission(request)
            else None,
        }
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The message page: everything about one message, read from its stored bytes."""
        inbound = self.get_record(request, object_id)
        try:
            message = StoredMessage(read_raw(inbound), inbound.envelope())
        except FileNotFoundError:
            message = None
        siblings = (
            InboundMessage.objects.using(inbound._state.db)
            .filter(raw_name=inbound.raw_name)
            .exclude(pk=inbound.pk)
            .only("pk", "recipient", "original_recipient", "status", "transport", "received_at")
            .order_by("received_at")[:50]
        )
        return self.page(
            request,
            TEMPLATES + "inboundmessage/message.html",
            title=inbound.subject or "(no subject)",
            inbound=inbound,
            original=inbound,
            message=message,
            sender=show_sender(inbound.sender),
            attempts=inbound.attempt_history(),
            replies=list(inbound.replies.defer("raw").order_by("created_at", "pk")),
            siblings=list(siblings),
            can_replay=self.has_replay_permission(request),
            can_reroute=self.has_reroute_permission(request),
            can_incinerate=self.has_incinerate_permission(request),
            raw_url=self.url("raw", inbound.pk),
            html_url=self.url("html", inbound.pk),
            replay_url=self.url("replay", inbound.pk),
            reroute_url=self.url("reroute", inbound.pk),
            incinerate_url=self.url("incinerate", inbound.pk),
            history_url=self.url("history", inbound.pk),
            parts=[
                (part, self.url("attachment", inbound.pk, part.index))
                for part in (message.parts() if message else [])
            ],
        )

    def raw_view(self, request, object_id):
        inbound = self.get_record(request, object_id)
        try:
            raw = read_raw(inbound)
        except FileNotFoundError:
            raise Http404("The raw message is gone from the storage.") from None
        return download_response(raw, f"message-{inbound.pk}.eml")

    def html_view(self, request, object_id):
        inbound = self.get_record(request, object_id)
        try:
            document = StoredMessage(read_raw(inbound), inbound.envelope()).html_document()
        except FileNotFoundError:
            document = None
        if document is None:
            raise Http404("This message has no HTML body.")
        return html_response(document)

    def attachment_view(self, request, object_id, index):
        inbound = self.get_record(request, object_id)
        try:
            found = StoredMessage(read_raw(inbound), inbound.envelope()).attachment(index)
        except FileNotFoundError:
            found = None
        if found is None:
            raise Http404("No such attachment.")
        name, content = found
        return download_response(content, name)

    # Actions on one message -------------------------------------------------

    def replay_view(self, request, object_id):
        inbound = self.get_record(request, object_id)
        if not self.has_replay_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            self.replay_and_report(request, inbound)
            return HttpResponseRedirect(self.url("change", inbound.pk))
        return self.confirm(request, "replay", [inbound])

    def reroute_view(self, request, object_id):
        inbound = self.get_record(request, object_id)
        if not self.has_reroute_permission(request):
            raise PermissionDenied
        form = RerouteForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            replayed = self.replay_and_report(request, inbound, form.cleaned_data["address"])
            target = replayed.inbound if replayed and replayed.inbound else inbound
            return HttpResponseRedirect(self.url("change", target.pk))
        return self.confirm(request, "reroute", [inbound], form=form)

    def incinerate_view(self, request, object_id):
        inbound = self.get_record(request, object_id)
        if not self.has_incinerate_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            self.incinerate_and_report(request, [inbound])
            return HttpResponseRedirect(self.url("changelist"))
        return self.confirm(request, "incinerate", [inbound])

    def confirm(self, request, action: str, objects, form=None, bulk=False):
        """The page that says what an action will do, and asks."""
        return self.page(
            request,
            TEMPLATES + "confirm.html",
            title={
                "replay": "Replay",
                "reroute": "Reroute",
                "incinerate": "Incinerate",
            }[action]
            + (f" {len(objects)} messages" if bulk else ""),
            action=action,
            objects=objects,
            form=form,
            bulk=bulk,
            finished=[obj for obj in objects if obj.is_finished],
            replies_pending=sum(
                obj.replies.filter(status="pending").count() for obj in objects[:50]
            )
            if action == "incinerate"
            else 0,
            action_checkbox_name=ACTION_CHECKBOX_NAME,
        )

    def replay_and_report(self, request, inbound, recipient=None):
        """Replay (or reroute) one message, log it, and tell the person what became of it."""
        from ..replay import replay

        try:
            replayed = apart(replay, inbound, recipient)
        except FileNotFoundError:
            self.message_user(
                request,
                f"Message #{inbound.pk}: its raw source is gone from the storage; "
                "nothing was dispatched.",
                messages.ERROR,
            )
            return None
        text = describe(inbound, replayed)
        self.log(request, [inbound], text)
        if recipient and replayed.inbound is not None and replayed.inbound.pk != inbound.pk:
            self.log(
                request,
                [replayed.inbound],
                f"Rerouted here from message #{inbound.pk} to <{inbound.recipient}>.",
            )
        outcome = replayed.result.outcome
        level = (
            messages.SUCCESS
            if outcome.is_success
            else messages.WARNING
            if outcome.is_permanent
            else messages.ERROR
        )
        self.message_user(request, text, level)
        return replayed

    def incinerate_and_report(self, request, objects):
        from ..retention import incinerate

        objects = list(objects)
        # The files among them (a small message is kept in its row instead).
        stored = set(
            InboundMessage.objects.using(objects[0]._state.db if objects else None)
            .filter(pk__in=[obj.pk for obj in objects], raw__isnull=True)
            .values_list("raw_name", flat=True)
        )
        self.log_deletion_of(request, objects, "Incinerated, with its attempts and replies.")
        purged = incinerate(objects)
        files = len(purged.files)
        self.message_user(
            request,
            f"Incinerated {purged.messages} message{'s' if purged.messages != 1 else ''}"
            f" and {files} raw file{'s' if files != 1 else ''}"
            + (" (a file another message still uses was kept)." if files < len(stored) else "."),
            messages.SUCCESS,
        )

    # Bulk actions -------------------------------------------------------------

    @admin.action(permissions=["replay"], description="Replay the selected messages")
    def replay_selected(self, request, queryset):
        if self.too_many(request, queryset):
            return None
        objects = list(queryset)
        if request.POST.get("post") != "yes":
            return self.confirm(request, "replay", objects, bulk=True)
        for inbound in objects:
            self.replay_and_report(request, inbound)
        return None

    @admin.action(permissions=["reroute"], description="Reroute the selected messages…")
    def reroute_selected(self, request, queryset):
        if self.too_many(request, queryset):
            return None
        objects = list(queryset)
        form = RerouteForm(request.POST if request.POST.get("post") == "yes" else None)
        if not form.is_valid():
            return self.confirm(request, "reroute", objects, form=form, bulk=True)
        for inbound in objects:
            self.replay_and_report(request, inbound, form.cleaned_data["address"])
        return None

    @admin.action(permissions=["incinerate"], description="Incinerate the selected messages")
    def incinerate_selected(self, request, queryset):
        if self.too_many(request, queryset):
            return None
        objects = list(queryset)
        if request.POST.get("post") != "yes":
            return self.confirm(request, "incinerate", objects, bulk=True)
        self.incinerate_and_report(request, objects)
        return None

    # The conductor --------------------------------------------------------------

    def conductor_view(self, request):
        from .conductor import conductor_view

        if not self.has_conductor_permission(request):
            raise PermissionDenied
        return conductor_view(self, request)


def show_sender(sender: str | None) -> str:
    if sender is None:
        return "—"
    return f"<{sender}>" if sender else "<> (null sender)"


def describe(inbound: InboundMessage, replayed) -> str:
    """One sentence on what a replay or reroute did, for the person and the admin log."""
    result = replayed.result
    row = replayed.inbound
    if row is not None and row.pk != inbound.pk:
        what = f"Rerouted to <{result.recipient}> (message #{row.pk})"
    elif row is not None and row.pk == inbound.pk:
        what = "Replayed"
    else:
        what = f"Dispatched to <{result.recipient}>"
    if replayed.reran:
        what += ", its view run again on purpose (it had been handled already)"
    outcome = result.outcome
    text = result.status_text or outcome.text
    sentence = f"{what}: {outcome.enhanced} {text}"
    if result.route:
        sentence += f", route {result.route}"
    if result.reply_sent:
        sentence += "; its reply was sent"
    elif result.reply_suppressed:
        sentence += f"; no reply ({result.reply_suppressed})"
    elif result.response is not None and result.response.sends_reply:
        sentence += "; its reply waits in the outbox"
    return sentence + "."
