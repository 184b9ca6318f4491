"""What the store's two ModelAdmins share: read-only records, permissions, the admin log."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.contrib import admin
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import connections, transaction
from django.http import Http404
from django.template.response import TemplateResponse
from django.utils.html import format_html

from .lists import CappedCountPaginator

T = TypeVar("T")

# Bulk actions act on at most this many rows at once; a selection of "all"
# on a large table is refused with a word to narrow it first.
BULK_LIMIT = 1000


class StoreAdmin(admin.ModelAdmin):
    """
    Records of what happened are not edited: nothing is added or changed
    by hand, and deleting is incinerating (its own permission, which also
    removes the raw file). The change lists count no further than they show.
    """

    show_full_result_count = False
    # No counts beside each filter's choices (Django 5's facets): a COUNT
    # per choice, on every page, is what a large table cannot afford.
    if hasattr(admin, "ShowFacets"):  # Django 5.0+
        show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    list_per_page = 50

    class Media:
        css = {"all": ["mailserver_store/admin.css"]}

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def allowed(self, request, codename: str) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    def get_actions(self, request, action_location=None):
        # Django 6.1 says where the actions are shown (the change list or a
        # change form) and deprecates an override without the parameter;
        # before 6.1 there is only the change list, and no parameter.
        options = {} if action_location is None else {"action_location": action_location}
        actions = super().get_actions(request, **options)
        actions.pop("delete_selected", None)
        return actions

    def get_record(self, request, object_id):
        """The row of a message page, or 404; PermissionDenied without the view permission."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} with the ID {object_id!r}.")
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        return obj

    def page(self, request, template: str, title: str, **context) -> TemplateResponse:
        """A page of ours, in the admin's frame (its header, breadcrumbs and sidebar)."""
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": title,
                "media": self.media,
                "has_view_permission": self.has_view_permission(request),
                **context,
            },
        )

    def too_many(self, request, queryset) -> bool:
        """Whether a bulk action was asked of more rows than BULK_LIMIT (and say so)."""
        if queryset[: BULK_LIMIT + 1].count() > BULK_LIMIT:
            self.message_user(
                request,
                f"At most {BULK_LIMIT} {self.opts.verbose_name_plural} at once: "
                "narrow the list with its filters first.",
                level="error",
            )
            return True
        return False

    def log(self, request, objects: Sequence, message: str, flag: int = CHANGE) -> None:
        """An entry in the admin log for each of ``objects``, saying ``message``."""
        if not objects:
            return
        if hasattr(LogEntry.objects, "log_actions"):  # Django 5.1+
            LogEntry.objects.log_actions(
                user_id=request.user.pk,
                queryset=objects,
                action_flag=flag,
                change_message=message,
                single_object=len(objects) == 1,
            )
            return
        from django.contrib.contenttypes.models import ContentType

        content_type = ContentType.objects.get_for_model(self.model, for_concrete_model=False)
        for obj in objects:  # pragma: no cover - before Django 5.1
            LogEntry.objects.log_action(
                request.user.pk, content_type.pk, obj.pk, str(obj), flag, message
            )

    def log_deletion_of(self, request, objects: Sequence, message: str) -> None:
        self.log(request, objects, message, DELETION)


def badge(status: str, label: str | None = None):
    """A status as a coloured label (mailserver_store/admin.css)."""
    return format_html(
        '<span class="mailstore-badge mailstore-{}">{}</span>', status, label or status
    )


def apart(function: Callable[..., T], *args: Any) -> T:
    """
    Run ``function`` in a thread of its own and wait for it: a dispatch
    from a web request, made as a transport makes one, on database
    connections of its own. The dispatch core's housekeeping closes the
    connections of the thread it runs in (close_old_connections, as Django
    does around each request), which must not be the request's; and what
    the dispatch commits is committed when the page answers, whatever the
    request's own transaction does.
    """
    outcome: dict[str, Any] = {}

    def run():
        try:
            outcome["value"] = function(*args)
        except BaseException as exc:  # given to the request's thread
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name="mailserver-admin-dispatch")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def dispatching(view):
    """
    A view that dispatches (see :func:`apart`): outside ATOMIC_REQUESTS,
    whose transaction would hold SQLite's lock while the dispatch waits for it.
    """
    return transaction.non_atomic_requests(view)
