"""Operators read the sweeps' rows in admin, never edit them: the overview's "Failing
Celery sweeps" link opens the runs, and an organization's failures list beside them."""

import pytest
from django.urls import reverse

from core.models import SweepFailure
from core.sweeps import sweep_run_record
from tests.factories import make_org, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def test_the_sweeps_runs_and_failures_read_in_admin_and_cannot_be_changed(operator):
    sweep_run_record(task="usage.rollup_sweep", ok=False, error="OperationalError()")
    org = make_org(name="Poisoned Co")
    failure = SweepFailure.objects.create(
        organization=org, sweep="rollup", target="2026-01-10", error="ZeroDivisionError: x"
    )

    overview = operator.get(reverse("admin:index")).content.decode()
    runs = reverse("admin:core_sweeprun_changelist")
    assert f'href="{runs}?failures_in_a_row__gt=0"' in overview
    page = operator.get(runs + "?failures_in_a_row__gt=0")
    assert page.status_code == 200 and "usage.rollup_sweep" in page.content.decode()

    failures = operator.get(reverse("admin:core_sweepfailure_changelist")).content.decode()
    assert "Poisoned Co" in failures and "ZeroDivisionError: x" in failures
    assert operator.get(reverse("admin:core_sweepfailure_add")).status_code == 403
    change = reverse("admin:core_sweepfailure_change", args=[failure.pk])
    operator.post(change, {"error": "edited"})
    assert SweepFailure.objects.get().error == "ZeroDivisionError: x"
