from django.apps import AppConfig


class SpendConfig(AppConfig):
    """Spend controls: budgets, authorize, reservations, estimates and rate limits
    (docs/spend-controls.md)."""

    name = "spend"
    verbose_name = "Spend controls"

    def ready(self) -> None:
        # Billing, below, asks its registered checks at the nightly reconciliation
        # (billing/usage_sources.py); spend controls answer whether holds match.
        from billing.usage_sources import reconciliation_check_register
        from spend.receivers import counters_signals_connect
        from spend.selectors.budgets import spend_reconciliation_check

        reconciliation_check_register(spend_reconciliation_check)
        counters_signals_connect()
