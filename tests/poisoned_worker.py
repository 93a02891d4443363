"""A Celery app for a worker process in which one organization is poisoned: its rollup,
hour rollup, alert evaluation and reconciliation always raise (the organization's id in
TEST_POISONED_ORG). Started by tests/reliability/test_poisoned_tenant_worker.py as
`celery -A tests.poisoned_worker worker`: the patches live in the worker's process."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
django.setup()

import alerts.services as alert_services  # noqa: E402
import billing.services.reconciliation as reconciliation  # noqa: E402
import rollups.services.days as rollup_days  # noqa: E402
import rollups.services.hours as rollup_hours  # noqa: E402
from console.celery import app  # noqa: E402, F401

POISONED = int(os.environ["TEST_POISONED_ORG"])


class Poisoned(RuntimeError):
    pass


def _poison(module, name: str) -> None:
    real = getattr(module, name)

    def patched(*args, org, **kwargs):
        if org.pk == POISONED:
            raise Poisoned(f"{name} always fails for organization {POISONED}")
        return real(*args, org=org, **kwargs)

    setattr(module, name, patched)


for _module, _name in (
    (rollup_days, "rollup_day"),
    (rollup_hours, "rollup_hour"),
    (alert_services, "alerts_evaluate"),
    (reconciliation, "reconcile_organization"),
):
    _poison(_module, _name)
