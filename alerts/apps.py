from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self) -> None:
        from alerts import receivers  # noqa: F401  (connects to accounts' and usage's signals)
        from alerts.budgets import budget_conditions
        from alerts.selectors import alert_condition_source_register

        # Budget thresholds (spend controls) are alert conditions like the others.
        alert_condition_source_register("budget", budget_conditions)
