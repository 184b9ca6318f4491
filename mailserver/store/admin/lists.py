"""
What makes the store's change lists fast on a large table: a paginator
that counts no further than it shows, and filters that need no query to
list their choices (the route filter aside, which reads the newest rows).
"""

from __future__ import annotations

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property

from ...status import Outcome


class CappedCountPaginator(Paginator):
    """
    Counts at most ``limit`` rows: ``SELECT COUNT(*) FROM (SELECT id ...
    LIMIT limit + 1)``, whose cost is bounded whatever the table's size, where
    a plain COUNT(*) reads the whole table (PostgreSQL has no row count to
    look up). Past the limit, ``capped`` is true, the count says ``limit``,
    and the pages go as far as that: narrow the list (a date, a status) to
    reach older rows.
    """

    limit = 10_000

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.capped = False

    @cached_property
    def count(self) -> int:
        objects = self.object_list
        if isinstance(objects, QuerySet):
            found = objects.order_by().values("pk")[: self.limit + 1].count()
        else:
            found = len(objects)
        self.capped = found > self.limit
        return min(found, self.limit)


class OutcomeFilter(admin.SimpleListFilter):
    """The outcomes of the outcome table (mailserver.status), with their enhanced codes."""

    title = "outcome"
    parameter_name = "outcome"

    def lookups(self, request, model_admin):
        return [
            (outcome.value, f"{outcome.enhanced} {outcome.value.replace('_', ' ')}")
            for outcome in Outcome
        ]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(outcome=value) if value else queryset


class RouteFilter(admin.SimpleListFilter):
    """
    The routes messages took (the view names of the mailconf), as the
    newest ``recent`` messages show them: read along the received_at index
    and no further, so the cost is the same on any table (a DISTINCT over
    the whole table is not; PostgreSQL reads every row for it). An older
    route is still filtered on by its URL. "(none)": messages that reached
    no view.
    """

    title = "route"
    parameter_name = "route"
    recent = 10_000

    def lookups(self, request, model_admin):
        newest = model_admin.model.objects.order_by("-received_at").values_list("route", flat=True)[
            : self.recent
        ]
        routes = sorted({route for route in newest if route})
        return [("-", "(none)"), *((route, route) for route in routes)]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(route="" if value == "-" else value)


class TransportFilter(admin.SimpleListFilter):
    """The ways in, listed without a query: the transports and the admin's own."""

    title = "transport"
    parameter_name = "transport"
    transports = [
        ("pipe", "django-mailpipe"),
        ("readmail", "manage.py readmail"),
        ("lmtp", "LMTP"),
        ("smtp", "SMTP"),
        ("conductor", "the conductor"),
        ("reroute", "a reroute"),
        ("test", "the test client"),
    ]

    def lookups(self, request, model_admin):
        return self.transports

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(transport=value) if value else queryset
