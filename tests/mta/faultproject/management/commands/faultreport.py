"""What a fault-injection run left in the database, as one line of JSON for the driver."""

import json

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db.models import Count

from ...models import Handled


def by_status(queryset) -> dict[str, int]:
    # order_by(): the models' default ordering would split the groups.
    return dict(queryset.order_by().values_list("status").annotate(Count("pk")))


class Command(BaseCommand):
    help = "Print what the fault-injection run left in the database, as JSON."

    def handle(self, *args, **options):
        per_message = dict(Handled.objects.order_by().values_list("number").annotate(Count("pk")))
        report = {
            "rows": sum(per_message.values()),
            "rows_per_message": per_message,
            "store": apps.is_installed("mailserver.store"),
        }
        if report["store"]:
            from mailserver.store.models import InboundAttempt, InboundMessage, OutboundMessage

            report["inbound"] = by_status(InboundMessage.objects.all())
            report["outbox"] = by_status(OutboundMessage.objects.all())
            # Deliveries of a finished message, answered from its record.
            report["replayed"] = InboundAttempt.objects.filter(replayed=True).count()
        self.stdout.write(json.dumps(report))
