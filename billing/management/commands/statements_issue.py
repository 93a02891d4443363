from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from billing.models import LedgerEntry
from billing.services import StatementError, statements_issue_due


class Command(BaseCommand):
    help = (
        "Issue the statement of every closed month that has none, for every organization "
        "with a ledger or the ones named (safe to run again: a month is issued once). Each "
        "new statement's link is emailed to the organization's owners and billing members, "
        "as when the beat task issues it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--org", action="append", default=[], metavar="SLUG", help="only this organization"
        )

    def handle(self, *args, **opts):
        orgs = Organization.objects.order_by("slug")
        if opts["org"]:
            orgs = orgs.filter(slug__in=opts["org"])
            missing = set(opts["org"]) - set(orgs.values_list("slug", flat=True))
            if missing:
                raise CommandError(f"no organization {', '.join(sorted(missing))}")
        else:
            orgs = orgs.filter(pk__in=LedgerEntry.objects.values("organization_id"))
        total = failed = 0
        for org in orgs:
            try:
                issued = statements_issue_due(org=org)
            except StatementError as error:
                failed += 1
                self.stderr.write(f"{org.slug}: {error}")
                continue
            total += len(issued)
            months = ", ".join(f"{s.month:%B %Y}" for s in issued) or "none due"
            self.stdout.write(f"{org.slug}: {months}")
        self.stdout.write(f"Issued {total} statement{'s' if total != 1 else ''}.")
        if failed:
            raise CommandError(f"{failed} organization{'s' if failed != 1 else ''} failed")
