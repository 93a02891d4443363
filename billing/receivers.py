"""Billing's signals to Celery tasks (connected in BillingConfig.ready)."""

from django.dispatch import receiver

from billing.signals import auto_recharge_due, statement_issued
from billing.tasks import auto_recharge_run, statement_notify


@receiver(auto_recharge_due, dispatch_uid="billing.auto_recharge_due")
def _auto_recharge_due(sender, organization_id: int, entry_id: int, **kwargs) -> None:
    auto_recharge_run.delay(organization_id, entry_id)


@receiver(statement_issued, dispatch_uid="billing.statement_issued")
def _statement_issued(sender, statement_id: int, **kwargs) -> None:
    statement_notify.delay(statement_id)
