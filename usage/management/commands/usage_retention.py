"""manage.py usage_retention --keep-months N: drop raw usage months already in rollups.

Off by default: without --keep-months it does nothing and says so. See
usage/services/retention.py for what is checked before a month goes, and docs/data-lifecycle.md
("Partitioned history and retention") for what it costs.
"""

from django.core.management.base import BaseCommand, CommandError

from usage.services.partitions import partitions_enabled
from usage.services.retention import MIN_KEEP_MONTHS, usage_retention_run


class Command(BaseCommand):
    help = (
        "Detach and drop the raw usage records of calendar months (UTC) older than the "
        "current month and the N full months before it, oldest first, once every day "
        "they hold is rolled up and reconciled. Without --keep-months nothing is dropped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--keep-months", type=int, dest="keep_months")
        parser.add_argument("--dry-run", action="store_true", help="check the months, drop nothing")

    def handle(self, *args, keep_months, dry_run, **options):
        if keep_months is None:
            self.stdout.write(
                "Retention is off: raw usage records are kept forever. "
                "Give --keep-months N to drop months older than N full months."
            )
            return
        if keep_months < MIN_KEEP_MONTHS:
            raise CommandError(
                f"--keep-months must be at least {MIN_KEEP_MONTHS} (the last 32 days' hour "
                "rollups are rebuilt from raw records)"
            )
        if not partitions_enabled():
            self.stdout.write("Nothing to do: raw usage tables are partitioned on PostgreSQL only.")
            return
        verdicts = usage_retention_run(keep_months=keep_months, dry_run=dry_run)
        if not verdicts:
            self.stdout.write(f"No month older than {keep_months} full months is kept raw.")
        for v in verdicts:
            records = sum(v.records.values())
            if v.dropped:
                self.stdout.write(
                    f"{v.month:%Y-%m}: dropped {records:,} records "
                    f"(checked in {v.check_ms:.0f} ms, detached in {v.detach_ms:.0f} ms, "
                    f"files dropped in {v.drop_ms:.0f} ms)"
                )
            elif v.ready:
                self.stdout.write(f"{v.month:%Y-%m}: ready, {records:,} records (dry run)")
            else:
                self.stdout.write(
                    f"{v.month:%Y-%m}: kept ({'; '.join(v.reasons)}); later months wait for it"
                )
