"""manage.py reconcile: cached balances against the ledger, rollups against raw records."""

import time

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from billing.services.reconciliation import DEFAULT_DAYS, reconcile_all

# The exit status when something does not match (1 stays for errors in the command).
MISMATCH_EXIT_CODE = 2


class Command(BaseCommand):
    help = (
        "Check every organization (or --org slug): cached balance = ledger sum, and each "
        "clean rollup day of the last --days days = a fresh aggregate of the raw records. "
        "Mismatches are logged, recorded as reconciliation issues (admin) and mailed to "
        f"ADMINS; nothing is changed. Exit status {MISMATCH_EXIT_CODE} on a mismatch."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", help="organization slug (default: every organization)")
        parser.add_argument(
            "--days",
            type=int,
            default=DEFAULT_DAYS,
            help=f"closed days back to check rollups for (default {DEFAULT_DAYS})",
        )

    def handle(self, *args, org, days, **options):
        if days < 0:
            raise CommandError("--days must not be negative")
        if org and not Organization.objects.filter(slug=org).exists():
            raise CommandError(f"no organization {org!r}")
        started = time.monotonic()
        report = reconcile_all(days=days, org_slug=org)
        for issue in report.issues:
            self.stderr.write(f"MISMATCH {issue.message} (issue #{issue.pk})")
        for slug in report.failed_organizations:
            self.stderr.write(f"FAILED {slug}: the check raised (see Sweep failures in admin)")
        if report.counts:  # before the summary, which stays the last line
            self.stdout.write(
                "Counted: " + ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))
            )
        self.stdout.write(
            f"Reconciled {report.organizations} organization(s): {report.balances_checked} "
            f"balance(s), {report.days_checked} rollup day(s) checked"
            + (
                f", {report.days_skipped} skipped (dirtied meanwhile)"
                if report.days_skipped
                else ""
            )
            + f"; {len(report.issues)} mismatch(es) in {time.monotonic() - started:.1f}s"
        )
        if report.issues or report.failed_organizations:
            failed = len(report.failed_organizations)
            raise CommandError(
                f"{len(report.issues)} mismatch(es) found"
                + (f", {failed} organization(s) failed to check" if failed else "")
                + "; nothing was changed",
                returncode=MISMATCH_EXIT_CODE,
            )
