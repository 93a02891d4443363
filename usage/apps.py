from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"
    verbose_name = "Usage"

    def ready(self) -> None:
        from billing.services.statements import statement_usage_breakdown_register
        from usage.selectors.statements import usage_breakdown

        # Statements (billing) itemize usage debits by the records they charged.
        statement_usage_breakdown_register(usage_breakdown)
