from django.apps import AppConfig


class SpendConfig(AppConfig):
    """Spend controls: budgets, authorize, reservations, estimates and rate limits
    (docs/spend-controls.md)."""

    name = "spend"
    verbose_name = "Spend controls"

    def ready(self) -> None:
        # Billing, below, asks its registered checks at the nightly reconciliation
        # (billing/usage_sources.py); spend controls answer whether holds match.
        from accounts.project_sections import project_section_register
        from billing.usage_sources import reconciliation_check_register
        from spend.receivers import counters_signals_connect
        from spend.selectors.budgets import spend_reconciliation_check
        from spend.views import project_limits_section

        reconciliation_check_register(spend_reconciliation_check)
        counters_signals_connect()
        # A project's page shows the budgets and limits that apply to its keys.
        project_section_register(project_limits_section)
