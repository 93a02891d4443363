"""Tenant isolation in every sweep: one organization whose rollup, hour rollup, alert
evaluation or reconciliation always raises is logged, recorded (SweepFailure) and, with
a worker, retried with backoff; the other organizations are processed all the same.
(The same with a real Celery worker: test_poisoned_tenant_worker.py.)"""

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from celery.exceptions import Retry
from django.core import mail
from django.utils import timezone

from accounts.projects import project_default_for
from alerts.models import AlertNotification, AlertRule
from alerts.services import alert_defaults_create, alerts_evaluate
from alerts.tasks import alerts_evaluate_due
from billing.models import CreditAccount, ReconciliationIssue
from billing.tasks import reconcile_nightly
from core.models import SweepFailure
from core.sweeps import sweep_backoff, sweep_org_run
from rollups.models import RollupHour, RollupState
from rollups.tasks import rollup_hours_sweep, rollup_sweep
from tests.factories import grant_credits, make_member, make_org, make_query
from usage.models import Controller

pytestmark = pytest.mark.django_db


class Poisoned(RuntimeError):
    pass


@pytest.fixture
def tenants():
    """Four organizations with usage yesterday; the first (lowest id) is the poisoned one."""
    orgs = [make_org(name=f"Tenant {n}") for n in range(4)]
    for org in orgs:
        make_member(org=org)
        make_query(org=org, occurred_at=timezone.now() - timedelta(days=1))
    return orgs[0], orgs[1:]


def poison(monkeypatch, module, name: str, org_id: int) -> None:
    real = getattr(module, name)

    def patched(*args, org, **kwargs):
        if org.pk == org_id:
            raise Poisoned(f"{name} always fails for org {org_id}")
        return real(*args, org=org, **kwargs)

    monkeypatch.setattr(module, name, patched)


def test_the_rollup_sweep_rolls_up_every_healthy_org_past_a_poisoned_one(monkeypatch, tenants):
    import rollups.services.days as rollup

    bad, healthy = tenants
    poison(monkeypatch, rollup, "rollup_day", bad.pk)
    rollup_sweep.delay()
    for org in healthy:
        assert RollupState.objects.filter(organization=org, dirty=False).exists(), org
    assert not RollupState.objects.filter(organization=bad, dirty=False).exists()
    failure = SweepFailure.objects.get(organization=bad, sweep="rollup")
    assert "Poisoned" in failure.error and failure.final  # eager: no retry in-process
    assert not SweepFailure.objects.exclude(organization=bad).exists()


def test_the_hour_sweep_rolls_up_every_healthy_org_past_a_poisoned_one(monkeypatch, tenants):
    import rollups.services.hours as rollup

    bad, healthy = tenants
    poison(monkeypatch, rollup, "rollup_hour", bad.pk)
    rollup_hours_sweep.delay()
    for org in healthy:
        assert RollupHour.objects.filter(organization=org, dirty=False).exists(), org
    assert not RollupHour.objects.filter(organization=bad, dirty=False).exists()
    assert SweepFailure.objects.filter(organization=bad, sweep="rollup_hours").exists()


def test_the_alert_sweep_evaluates_every_healthy_org_past_a_poisoned_one(monkeypatch, tenants):
    import alerts.services as services

    bad, healthy = tenants
    for org in (bad, *healthy):
        alert_defaults_create(org=org)  # low balance: below 10 credits (they have none)
    poison(monkeypatch, services, "alerts_evaluate", bad.pk)
    alerts_evaluate_due.delay()
    for org in healthy:
        assert AlertNotification.objects.filter(organization=org).exists(), org
    assert not AlertNotification.objects.filter(organization=bad).exists()
    assert SweepFailure.objects.filter(organization=bad, sweep="alerts").exists()


def test_reconciliation_checks_every_healthy_org_past_a_poisoned_one(monkeypatch, tenants):
    import billing.services.reconciliation as reconciliation

    bad, healthy = tenants
    for org in (bad, *healthy):
        grant_credits(org=org, amount="5")
        CreditAccount.objects.filter(organization=org).update(balance=Decimal("1"))
    poison(monkeypatch, reconciliation, "reconcile_organization", bad.pk)
    reconcile_nightly.delay()
    for org in healthy:
        assert ReconciliationIssue.objects.filter(organization=org, kind="balance").exists()
    assert SweepFailure.objects.filter(organization=bad, sweep="reconcile").exists()


def test_a_failure_outside_eager_mode_is_retried_with_backoff(tenants):
    bad, _ = tenants
    retried = {}

    def retry(**kwargs):
        retried.update(kwargs)
        return Retry("retry", when=kwargs["countdown"])

    task = SimpleNamespace(
        request=SimpleNamespace(retries=2, is_eager=False), max_retries=5, retry=retry
    )
    with pytest.raises(Retry):
        sweep_org_run(task, org_id=bad.pk, sweep="rollup", work=lambda: 1 / 0)
    assert retried["countdown"] == sweep_backoff(2) == 240
    failure = SweepFailure.objects.get(organization=bad)
    assert failure.attempt == 3 and not failure.final
    # The last attempt is final: recorded, no retry, the task ends quietly.
    task.request.retries = 5
    assert sweep_org_run(task, org_id=bad.pk, sweep="rollup", work=lambda: 1 / 0) is None
    assert SweepFailure.objects.filter(organization=bad, final=True).count() == 1


def test_a_controller_named_with_cr_lf_does_not_break_alert_evaluation_or_its_email(
    settings, tenants, django_capture_on_commit_callbacks
):
    _bad, (org, *_rest) = tenants
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # Stored before names were checked (or through a path that does not check).
    Controller.objects.create(
        organization=org,
        project=project_default_for(org=org),
        name="dgx\r\nBcc: victim@example.com\u202e",
        cores=1,
        memory_gb=1,
        token_hash="x" * 64,
        token_last_four="xxxx",
        last_heartbeat_at=timezone.now() - timedelta(hours=2),
    )
    AlertRule.objects.create(organization=org, kind="controller_offline", threshold=15)
    with django_capture_on_commit_callbacks(execute=True):
        fired = alerts_evaluate(org=org)
    assert fired
    subjects = [m.subject for m in mail.outbox]
    assert any("dgx" in s for s in subjects), subjects
    for subject in subjects:
        assert "\r" not in subject and "\n" not in subject and "\u202e" not in subject
        assert all(m.bcc == [] for m in mail.outbox)
