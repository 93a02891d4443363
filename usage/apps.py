from django.apps import AppConfig
from django.db.models.signals import post_migrate


class UsageConfig(AppConfig):
    name = "usage"
    verbose_name = "Usage"

    def ready(self) -> None:
        from billing.usage_sources import (
            credits_by_model_register,
            reconciliation_check_register,
            statement_usage_breakdown_register,
        )
        from usage.selectors.budgets import spend_reconciliation_check
        from usage.selectors.finance import credits_by_model
        from usage.selectors.statements import usage_breakdown
        from usage.services.rollup.reconcile import rollups_reconcile

        # What billing, below usage, reads from it (billing/usage_sources.py): statements
        # itemize usage debits by the records they charged, the finance page shows credits
        # by model, and the nightly reconciliation checks the rollups and the spend holds.
        statement_usage_breakdown_register(usage_breakdown)
        credits_by_model_register(credits_by_model)
        reconciliation_check_register(rollups_reconcile)
        reconciliation_check_register(spend_reconciliation_check)
        from usage.services.spend_counters import counters_signals_connect

        counters_signals_connect()
        # Every `migrate` makes the months ahead too (the beat task does it daily).
        post_migrate.connect(_partitions_make_ahead, sender=self)


def _partitions_make_ahead(sender, using, plan=None, **kwargs) -> None:
    from django.db import connections

    from usage.services.partitions import partitions_make_ahead

    if connections[using].vendor != "postgresql" or using != "default":
        return
    # Only once the partitioned tables exist (not while migrating backwards, say).
    from django.db.migrations.recorder import MigrationRecorder

    if (
        MigrationRecorder(connections[using])
        .migration_qs.filter(app="usage", name="0010_partition_raw_records")
        .exists()
    ):
        partitions_make_ahead()
