from django.apps import AppConfig


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
