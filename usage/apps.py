from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"
    verbose_name = "Usage"

    def ready(self) -> None:
        from billing.services.statements import statement_usage_breakdown_register
        from usage.statement_usage import usage_breakdown

        # Statements (billing) itemize usage debits by the records they charged.
        statement_usage_breakdown_register(usage_breakdown)

        # Spend controls: budget thresholds join the alert rules (usage/budget_alerts.py).
        from billing.alerts.selectors import alert_condition_source_register
        from usage.budget_alerts import budget_conditions

        alert_condition_source_register("budget", budget_conditions)

        # ... and reconciliation counts over-cap usage and checks the spend holds.
        from billing.services.reconciliation import reconcile_counter_register
        from usage.budget_selectors import spend_reconcile_counts

        reconcile_counter_register(spend_reconcile_counts)
