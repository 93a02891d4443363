from django.apps import AppConfig


class InsightsConfig(AppConfig):
    """What people and programs read: the usage panel, Explore, summaries, Finance's and
    statements' usage figures and the read API (docs/architecture.md)."""

    name = "insights"
    verbose_name = "Insights"

    def ready(self) -> None:
        # Billing, below, reads these through its hooks (billing/usage_sources.py):
        # statements itemize usage debits by the records they charged, and Finance
        # shows credits by model (and by month for a project).
        from billing.usage_sources import (
            credits_by_model_register,
            credits_by_month_register,
            statement_usage_breakdown_register,
        )
        from insights.selectors.finance import credits_by_model, credits_by_month
        from insights.selectors.statements import usage_breakdown

        statement_usage_breakdown_register(usage_breakdown)
        credits_by_model_register(credits_by_model)
        credits_by_month_register(credits_by_month)
