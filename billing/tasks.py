"""Celery tasks for billing: thin wrappers that take ids and call a service."""

from celery import shared_task
from django.db import OperationalError

from accounts.models import Organization
from billing.models import LedgerEntry
from core.sweeps import SWEEP_MAX_RETRIES, sweep_org_run


@shared_task(bind=True, acks_late=True, max_retries=SWEEP_MAX_RETRIES)
def auto_recharge_run(self, org_id: int, trigger_entry_id: int) -> int | None:
    """Auto-recharge for the debit that crossed the threshold; safe to run twice. A failure
    is recorded and retried with backoff (one organization's task, as every sweep's)."""
    from billing.services import auto_recharge_fire

    def work():
        return auto_recharge_fire(org_id=org_id, trigger_entry_id=trigger_entry_id)

    payment = sweep_org_run(
        self, org_id=org_id, sweep="auto_recharge", target=f"entry {trigger_entry_id}", work=work
    )
    return payment.pk if payment else None


# Reconciliation -------------------------------------------------------------------------


@shared_task(bind=True, acks_late=True, max_retries=SWEEP_MAX_RETRIES)
def reconcile_org(self, org_id: int, days: int = 7) -> int:
    """Check one organization's cached balance and recent clean rollup days against their
    source of truth; the number of mismatches (reported, never fixed). A failure to check
    is recorded and retried with backoff; other organizations' checks go on."""
    from billing.services.reconciliation import reconcile_organization, reconcile_report

    org = Organization.objects.filter(pk=org_id).first()
    if org is None:
        return 0
    report = sweep_org_run(
        self,
        org_id=org_id,
        sweep="reconcile",
        work=lambda: reconcile_organization(org=org, days=days),
    )
    if report is None:
        return 0
    reconcile_report(report)
    return len(report.issues)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def reconcile_nightly(days: int = 7) -> int:
    """The beat's entry: one reconciliation task per organization; returns how many."""
    org_ids = list(Organization.objects.order_by("pk").values_list("pk", flat=True))
    for org_id in org_ids:
        reconcile_org.delay(org_id, days)
    return len(org_ids)


# Statements ------------------------------------------------------------------------------


@shared_task(bind=True, acks_late=True, max_retries=SWEEP_MAX_RETRIES)
def statements_issue_org(self, org_id: int) -> int:
    """Issue one organization's statements for every closed month that has none; the
    number issued. Safe to run twice (a month's statement is issued once)."""
    from billing.services.statements import statements_issue_due

    org = Organization.objects.filter(pk=org_id).first()
    if org is None:
        return 0
    issued = sweep_org_run(
        self, org_id=org_id, sweep="statements", work=lambda: statements_issue_due(org=org)
    )
    return len(issued or [])


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def statements_issue_due_all() -> int:
    """The beat's entry: one statement task per organization with a ledger; how many."""
    org_ids = list(
        LedgerEntry.objects.values_list("organization_id", flat=True)
        .distinct()
        .order_by("organization_id")
    )
    for org_id in org_ids:
        statements_issue_org.delay(org_id)
    return len(org_ids)


@shared_task(
    acks_late=True,
    autoretry_for=(OSError, OperationalError),
    retry_backoff=True,
    max_retries=5,
)
def statement_notify(statement_id: int) -> int:
    """Email a new statement's link to the owners and billing members, once."""
    from billing.services.statements import statement_notify as notify

    return notify(statement_id=statement_id)
