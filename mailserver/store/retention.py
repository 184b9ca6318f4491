"""
Retention: finished messages go after MAIL_STORE_RETENTION, and so do raw
files nothing points to.

A message is deleted only when it is finished (processed, bounced, failed)
for longer than the retention and none of its replies is still pending: an
unfinished message may yet be delivered again, and a pending reply is still
to be sent. Its attempts and sent replies go with it. A raw file is deleted
once no message points to it and it has not been touched for
MAIL_STORE_ORPHAN_GRACE: a delivery under way may have written (or reused)
it and not yet committed the row that points to it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import router, transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from ..conf import duration
from .models import InboundAttempt, InboundMessage, OutboundMessage
from .storage import PREFIX, get_storage

logger = logging.getLogger("mailserver.store")

BATCH = 500


@dataclass
class Purged:
    messages: int = 0
    files: list[str] = field(default_factory=list)


def expired(now=None, using: str | None = None):
    """The messages purgemail deletes."""
    using = using or router.db_for_write(InboundMessage)
    cutoff = (now or timezone.now()) - duration("MAIL_STORE_RETENTION")
    pending = OutboundMessage.objects.using(using).filter(
        inbound=OuterRef("pk"), status=OutboundMessage.Status.PENDING
    )
    return (
        InboundMessage.objects.using(using)
        .filter(status__in=InboundMessage.FINISHED, finished_at__lt=cutoff)
        .exclude(Exists(pending))
    )


def purge(*, now=None, dry_run: bool = False, using: str | None = None) -> Purged:
    """Delete expired messages, then the raw files no message points to."""
    using = using or router.db_for_write(InboundMessage)
    now = now or timezone.now()
    purged = Purged()
    candidates: set[str] = set()
    if dry_run:
        purged.messages = expired(now, using).count()
        candidates.update(expired(now, using).values_list("raw_name", flat=True))
    else:
        while batch := list(expired(now, using).values_list("pk", "raw_name")[:BATCH]):
            candidates.update(name for _, name in batch)
            InboundMessage.objects.using(using).filter(pk__in=[pk for pk, _ in batch]).delete()
            purged.messages += len(batch)
    storage = get_storage()
    grace = now - duration("MAIL_STORE_ORPHAN_GRACE")
    names = sorted(candidates.union(_stored_names(storage)))
    for start in range(0, len(names), BATCH):
        chunk = names[start : start + BATCH]
        holders = InboundMessage.objects.using(using).filter(raw_name__in=chunk)
        if dry_run:  # as if the expired messages were gone
            holders = holders.exclude(pk__in=expired(now, using).values("pk"))
        referenced = set(holders.values_list("raw_name", flat=True))
        for name in chunk:
            if name in referenced:
                continue
            try:
                if storage.get_modified_time(name) >= grace:
                    continue  # perhaps a delivery's, whose row is not committed yet
                if not dry_run:
                    storage.delete(name)
            except FileNotFoundError:
                continue
            purged.files.append(name)
    return purged


def _stored_names(storage, directory: str = PREFIX):
    """Every file under the store's prefix (temporary files of cut-short writes too)."""
    try:
        directories, files = storage.listdir(directory)
    except FileNotFoundError:
        return
    for name in files:
        yield f"{directory}/{name}"
    for sub in directories:
        yield from _stored_names(storage, f"{directory}/{sub}")


def incinerate(messages: Iterable[InboundMessage]) -> Purged:
    """
    Delete ``messages`` now, with their attempts and replies (pending ones
    too: a person chose to), then each raw file no message points to any
    more. A file is kept when a delivery has touched it since the last time
    one of these messages was seen (received, or answered from its record):
    the same bytes are arriving again, and that delivery's row, not yet
    committed, will point to the file. Such a file, if nothing comes to
    point to it after all, is purgemail's once MAIL_STORE_ORPHAN_GRACE has
    passed.
    """
    purged = Purged()
    by_database: dict[str, list[int]] = {}
    for inbound in messages:
        using = inbound._state.db or router.db_for_write(InboundMessage)
        by_database.setdefault(using, []).append(inbound.pk)
    storage = get_storage()
    for using, pks in by_database.items():
        with transaction.atomic(using=using):
            last_seen = _last_seen(pks, using)
            _, deleted = InboundMessage.objects.using(using).filter(pk__in=pks).delete()
            purged.messages += deleted.get(InboundMessage._meta.label, 0)
        referenced = set(
            InboundMessage.objects.using(using)
            .filter(raw_name__in=list(last_seen))
            .values_list("raw_name", flat=True)
        )
        for name, seen in last_seen.items():
            if name in referenced:
                continue
            try:
                if storage.get_modified_time(name) > seen:
                    logger.info("Kept %s: a delivery of the same bytes has touched it", name)
                    continue
                storage.delete(name)
            except FileNotFoundError:
                continue
            purged.files.append(name)
    return purged


def _last_seen(pks: list[int], using: str) -> dict[str, datetime]:
    """For each raw file of these messages, when one of them was last received or answered."""
    seen: dict[str, datetime] = dict(
        InboundMessage.objects.using(using)
        .filter(pk__in=pks)
        .values("raw_name")
        .annotate(last=Max("received_at"))
        .values_list("raw_name", "last")
    )
    answered = (
        InboundAttempt.objects.using(using)
        .filter(message__in=pks)
        .values("message__raw_name")
        .annotate(last=Max("finished_at"))
        .values_list("message__raw_name", "last")
    )
    for name, last in answered:
        seen[name] = max(seen[name], last)
    return seen
