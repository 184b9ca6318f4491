"""Delete finished inbound messages past MAIL_STORE_RETENTION, and orphaned raw files."""

from django.core.management.base import BaseCommand

from mailserver.store.retention import purge


class Command(BaseCommand):
    help = (
        "Delete inbound messages finished longer than MAIL_STORE_RETENTION ago (never one "
        "unfinished or with replies still to send), their raw files, and raw files nothing "
        "points to once older than MAIL_STORE_ORPHAN_GRACE. Run it daily from cron."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would go; delete nothing."
        )

    def handle(self, *args, dry_run=False, verbosity=1, **options):
        purged = purge(dry_run=dry_run)
        if verbosity >= 2:
            for name in purged.files:
                self.stdout.write(f"raw file {name}")
        if verbosity >= 1:
            verb = "Would delete" if dry_run else "Deleted"
            self.stdout.write(
                f"{verb} {purged.messages} message(s) and {len(purged.files)} raw file(s)."
            )
