"""
The change lists on a large table: a bounded number of queries per page,
none of them a COUNT of the whole table, whatever the filters; newest first.
"""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from mailserver.store.admin.lists import CappedCountPaginator
from mailserver.store.models import InboundMessage, OutboundMessage

pytestmark = pytest.mark.django_db

ROWS = 100_000
LIST = "/admin/mailserver_store/inboundmessage/"
REPLIES = "/admin/mailserver_store/outboundmessage/"

STATES = [
    ("processed", "delivered", "2.0.0", "delivered", "open-ticket"),
    ("processed", "ignored", "2.0.0", "accepted, no reply", "quiet"),
    ("bounced", "unknown_recipient", "5.1.1", "<x@example.com>: no such mailbox", ""),
    ("deferred", "temporary_failure", "4.3.0", "temporary failure, try again later", "flaky"),
]


def build(rows: int) -> None:
    """``rows`` messages, one a minute back from now, in batches."""
    now = timezone.now()
    batch = []
    for n in range(rows):
        status, outcome, code, text, route = STATES[n % len(STATES)]
        batch.append(
            InboundMessage(
                idempotency_key=f"{n:064x}",
                sender=f"sender{n % 977}@example.org",
                recipient="help@desk.example.com" if n % 3 else f"ticket+{n}@desk.example.com",
                raw_name=f"inbound/{n % 256:02x}/{n:064x}.eml",
                message_id=f"<m{n}@example.org>",
                subject=f"Message number {n}",
                status=status,
                outcome=outcome,
                enhanced_code=code,
                status_text=text,
                route=route,
                attempts=1,
                received_at=now - timedelta(minutes=ROWS - n),
                transport="pipe",
            )
        )
        if len(batch) == 5000:
            InboundMessage.objects.bulk_create(batch)
            batch = []
    InboundMessage.objects.bulk_create(batch)


def whole_table_counts(queries) -> list[str]:
    """The COUNT queries that are not bounded by a LIMIT: what must not run on each page."""
    return [
        q["sql"]
        for q in queries
        if "COUNT(" in q["sql"].upper() and not re.search(r"\bLIMIT\b", q["sql"], re.I)
    ]


def test_the_change_list_of_100000_messages_is_a_few_bounded_queries(admin_client):
    build(ROWS)
    assert InboundMessage.objects.count() == ROWS
    admin_client.get(LIST)  # the session and the user, once
    pages = [
        "",
        "?status__exact=deferred",
        "?outcome=unknown_recipient",
        "?route=open-ticket&transport=pipe",
        "?received_at__gte=2000-01-01+00%3A00%3A00%2B00%3A00",
        "?q=number+99999",
        "?p=7",
    ]
    for query in pages:
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(LIST + query)
        assert response.status_code == 200, query
        # Session, user, the capped count, the page of rows, the route filter's choices.
        assert len(queries) <= 6, (query, [q["sql"] for q in queries])
        assert whole_table_counts(queries.captured_queries) == [], query
    content = admin_client.get(LIST).content.decode()
    # Newest first.
    assert content.index("Message number 99999") < content.index("Message number 99998")
    assert f"more than {CappedCountPaginator.limit} inbound messages" in content
    filtered = admin_client.get(LIST + "?q=number+99999").content.decode()
    assert "1 inbound message" in filtered and "Message number 99999" in filtered


def test_the_query_count_does_not_grow_with_the_rows_shown(
    admin_client, django_assert_max_num_queries
):
    build(10)
    admin_client.get(LIST)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(LIST)
    build_more = 40
    InboundMessage.objects.all().delete()
    build(build_more)
    with django_assert_max_num_queries(len(few)):
        admin_client.get(LIST)


def test_the_reply_list_reads_no_message_bytes_and_no_inbound_row_per_reply(
    admin_client, django_assert_max_num_queries
):
    build(60)
    OutboundMessage.objects.bulk_create(
        OutboundMessage(
            inbound=inbound,
            raw=b"Subject: x\n\n" + b"x" * 10_000,
            recipients=["ann@example.org"],
            subject=f"Re: {inbound.subject}",
        )
        for inbound in InboundMessage.objects.all()
    )
    admin_client.get(REPLIES)
    with django_assert_max_num_queries(5) as queries:
        response = admin_client.get(REPLIES)
    assert response.status_code == 200
    assert "message #" in response.content.decode()
    page = [q["sql"] for q in queries.captured_queries if "outboundmessage" in q["sql"]]
    assert page and not any('"raw"' in sql for sql in page)


def test_the_capped_paginator_counts_exactly_below_its_limit():
    build(30)
    paginator = CappedCountPaginator(InboundMessage.objects.all(), 10)
    assert (paginator.count, paginator.capped, paginator.num_pages) == (30, False, 3)
    small = CappedCountPaginator(InboundMessage.objects.all(), 10)
    small.limit = 25
    assert (small.count, small.capped, small.num_pages) == (25, True, 3)
