"""manage.py rollup: recompute the daily rollups of a day or a range, with a progress bar."""

import sys
import time
from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from core.calendar import org_today
from rollups.services.days import rollup_day


def _progress(done: int, total: int, started: float, label: str) -> str:
    width = 30
    filled = width * done // max(total, 1)
    elapsed = time.monotonic() - started
    return f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {elapsed:6.1f}s {label:<40}"


class Command(BaseCommand):
    help = (
        "Recompute daily rollups: --day D, or --from D --to D (inclusive), for one "
        "organization (--org slug) or all. Days not closed yet in an organization's zone "
        "are skipped. Idempotent: running it twice leaves the same rows."
    )

    def add_arguments(self, parser):
        parser.add_argument("--day", type=date.fromisoformat)
        parser.add_argument("--from", dest="first", type=date.fromisoformat)
        parser.add_argument("--to", dest="last", type=date.fromisoformat)
        parser.add_argument("--org", help="organization slug (default: every organization)")

    def handle(self, *args, day, first, last, org, **options):
        if day and (first or last):
            raise CommandError("give --day, or --from and --to, not both")
        if day:
            first = last = day
        if not first or not last:
            raise CommandError("give --day D, or --from D --to D")
        if last < first:
            raise CommandError("--to is before --from")
        orgs = Organization.objects.order_by("slug")
        if org:
            orgs = orgs.filter(slug=org)
            if not orgs.exists():
                raise CommandError(f"no organization {org!r}")
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        work = [(o, d) for o in orgs for d in days if d < org_today(o)]
        skipped = len(days) * len(orgs) - len(work)
        started = time.monotonic()
        rows = restated = 0
        tty = sys.stdout.isatty()
        for n, (o, d) in enumerate(work, start=1):
            result = rollup_day(org=o, day=d)
            rows += result.rows
            restated += result.restatements
            if tty or n == len(work) or n % 50 == 0:
                self.stdout.write(_progress(n, len(work), started, f"{o.slug} {d}"), ending="")
                self.stdout.flush()
        if work:
            self.stdout.write("")
        self.stdout.write(
            f"Rolled up {len(work)} org-days ({rows} rows, {restated} restatements) in "
            f"{time.monotonic() - started:.1f}s"
            + (f"; skipped {skipped} not closed yet" if skipped else "")
        )
