"""What keeps the spend counters (spend/services/spend_counters.py) true when something
else changes what authorize reads: a budget or a key pause saved or deleted, an
organization saved, a ledger entry posted. Connected in SpendConfig.ready()."""

from django.db.models.signals import post_delete, post_save

from accounts.models import Organization
from billing.models import EntryKind, LedgerEntry
from spend.models import Budget, KeyPause
from spend.services.counter_keys import counters_drop_on_commit
from spend.services.spend_counters import balance_taken, counters_balance_move


def _dropped_by(sender, instance, **kwargs) -> None:
    counters_drop_on_commit(instance.organization_id)


def _organization_saved(sender, instance, **kwargs) -> None:
    counters_drop_on_commit(instance.pk)


def _ledger_posted(sender, instance, created: bool, **kwargs) -> None:
    """A usage debit moves the balance the script sees at once (before its commit: a
    rollback leaves less to spend, never more); any other entry drops the counters."""
    if not created:
        return
    if instance.kind == EntryKind.USAGE and instance.amount < 0:
        if balance_taken(instance.organization_id):
            return  # the batch took these credits through the counters already
        counters_balance_move(org_id=instance.organization_id, amount=instance.amount)
    else:
        counters_drop_on_commit(instance.organization_id)


def counters_signals_connect() -> None:
    """Every change to what authorize reads reaches the counters (AppConfig.ready)."""
    for model in (Budget, KeyPause):
        post_save.connect(_dropped_by, sender=model, dispatch_uid=f"spend-counters-{model}")
        post_delete.connect(_dropped_by, sender=model, dispatch_uid=f"spend-counters-d-{model}")
    post_save.connect(_organization_saved, sender=Organization, dispatch_uid="spend-counters-org")
    post_save.connect(_ledger_posted, sender=LedgerEntry, dispatch_uid="spend-counters-ledger")
