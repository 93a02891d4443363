from django.apps import AppConfig


class RollupsConfig(AppConfig):
    """Aggregates, hour and day rollups and the read engine over them
    (docs/data-lifecycle.md)."""

    name = "rollups"
    verbose_name = "Rollups"

    def ready(self) -> None:
        # Billing, below, asks its registered checks at the nightly reconciliation
        # (billing/usage_sources.py); the rollups answer whether they match the records.
        from billing.usage_sources import reconciliation_check_register
        from rollups.services.reconcile import rollups_reconcile

        reconciliation_check_register(rollups_reconcile)
