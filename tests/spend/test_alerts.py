"""Budget thresholds join the alert rules: one notification per budget period for the
highest threshold crossed."""

from decimal import Decimal

import pytest

from alerts.models import AlertNotification, AlertRule
from alerts.services import alerts_evaluate
from ingest.services.ingest import usage_records_ingest
from spend.models import SpendDay
from spend.services.budgets import budget_create

pytestmark = pytest.mark.django_db


def q(n: int, tokens: int) -> dict:
    return {"id": f"q-{n}", "kind": "query", "occurred_at": "2026-11-20T11:00:00Z",
            "model": "llama-3.1-8b", "input_tokens": tokens, "output_tokens": 0}  # fmt: skip


def test_budget_thresholds_fire_once_per_crossing_and_clear_at_the_reset(
    spend, frozen, django_capture_on_commit_callbacks
):
    budget = budget_create(org=spend.org, scope="api_key", api_key_id=spend.key.pk,
                           period="day", soft_limit=Decimal("0.01"))  # fmt: skip
    assert AlertRule.objects.filter(organization=spend.org, kind="budget").count() == 1
    # 0.006 credits: 60% of 0.01.
    usage_records_ingest(org=spend.org, records=[q(1, 60_000)], api_key=spend.key)
    with django_capture_on_commit_callbacks():
        fired = alerts_evaluate(org=spend.org)
    assert [n.subject for n in fired] == [f"budget:{budget.pk}:50"]
    assert fired[0].figures["api_key"] == spend.key.pk
    assert "reached 50%" in fired[0].message
    with django_capture_on_commit_callbacks():
        assert alerts_evaluate(org=spend.org) == []  # still over 50%: no second notification
    usage_records_ingest(org=spend.org, records=[q(2, 50_000)], api_key=spend.key)  # 110%
    with django_capture_on_commit_callbacks():
        fired = alerts_evaluate(org=spend.org)
    # Past 80% and 100% at once: one notification, for 100%; the 50% one closes (one
    # banner per budget).
    assert [n.subject for n in fired] == [f"budget:{budget.pk}:100"]
    assert "past 50% and 80% too" in fired[0].message
    still_open = AlertNotification.objects.filter(organization=spend.org, cleared_at__isnull=True)
    assert [n.subject for n in still_open] == [f"budget:{budget.pk}:100"]
    # The next day the period resets: the crossings clear.
    frozen.shift(__import__("datetime").timedelta(days=1))
    with django_capture_on_commit_callbacks():
        alerts_evaluate(org=spend.org)
    assert not AlertNotification.objects.filter(
        organization=spend.org, kind="budget", cleared_at__isnull=True
    ).exists()


def test_the_notification_offers_to_pause_the_key(client, spend, frozen):
    budget_create(org=spend.org, scope="api_key", api_key_id=spend.key.pk, period="day",
                  soft_limit=Decimal("0.001"))  # fmt: skip
    usage_records_ingest(org=spend.org, records=[q(1, 60_000)], api_key=spend.key)
    alerts_evaluate(org=spend.org)
    client.force_login(spend.owner)
    page = client.get(f"/o/{spend.org.slug}/settings/alerts/notifications/")
    assert page.status_code == 200
    assert 'data-testid="notification-pause-key"' in page.content.decode()
    url = f"/o/{spend.org.slug}/usage/keys/{spend.key.pk}/pause"
    response = client.post(url, {"next": f"/o/{spend.org.slug}/settings/alerts/notifications/"})
    assert response.status_code == 302 and response["Location"].endswith("/notifications/")


def test_reconciliation_counts_over_cap_usage_and_checks_the_holds(spend, frozen):
    from billing.services.reconciliation import reconcile_organization
    from spend.models import SpendHold

    budget_create(org=spend.org, scope="organization", period="day",
                  soft_limit=Decimal("0.001"), hard_limit=Decimal("0.002"))  # fmt: skip
    # 0.006 credits without a reservation: stored, charged, 0.004 over the hard level.
    usage_records_ingest(org=spend.org, records=[q(1, 60_000)], api_key=spend.key)
    report = reconcile_organization(org=spend.org, days=7)
    assert report.counts == {"over_cap_flags": 1, "spend_hold_mismatches": 0}
    from spend import counters

    if counters.enabled():
        # Authorize's holds are Redis' counters: built from the database, then one drifts.
        from spend.services.counters_rebuild import counters_rebuild

        counters_rebuild(org=spend.org)
        assert reconcile_organization(org=spend.org, days=7).counts["spend_hold_mismatches"] == 0
        counters.client().hset(f"{counters.org_tag(spend.org.pk)}:s", "h:o:", "1|0")
    else:
        SpendHold.objects.filter(organization=spend.org).update(credits=Decimal("1"))
    assert reconcile_organization(org=spend.org, days=7).counts["spend_hold_mismatches"] >= 1


def test_a_budget_already_past_its_soft_level_fires_once_for_its_highest_threshold(
    spend, frozen, django_capture_on_commit_callbacks
):
    from django.core import mail

    for key_budget in (True, False):
        budget_create(org=spend.org, scope="api_key" if key_budget else "organization",
                      api_key_id=spend.key.pk if key_budget else None, period="day",
                      soft_limit=Decimal("0.001"), hard_limit=Decimal("0.002"))  # fmt: skip
    # 0.006 credits: 600% of both soft levels, before anyone evaluated.
    usage_records_ingest(org=spend.org, records=[q(1, 60_000)], api_key=spend.key)
    with django_capture_on_commit_callbacks(execute=True):
        fired = alerts_evaluate(org=spend.org)
    assert len(fired) == 2  # two budgets, one notification each (not 50%, 80% and 100%)
    assert {n.subject.rsplit(":", 1)[1] for n in fired} == {"100"}
    for n in fired:
        assert "past 50% and 80% too" in n.message
        assert "over its hard level by 0.0040 credits" in n.message
    assert len(mail.outbox) == 2  # each mailed once, with a subject that says what it is
    assert all("a budget reached 100% of its soft level" in m.subject for m in mail.outbox)


def test_a_threshold_told_of_never_fires_again_in_the_period_after_a_refund(
    spend, frozen, django_capture_on_commit_callbacks
):
    budget = budget_create(org=spend.org, scope="organization", period="day",
                           soft_limit=Decimal("0.01"))  # fmt: skip
    usage_records_ingest(org=spend.org, records=[q(1, 90_000)], api_key=spend.key)  # 90%
    with django_capture_on_commit_callbacks():
        assert [n.subject for n in alerts_evaluate(org=spend.org)] == [f"budget:{budget.pk}:80"]
    # Spending restated down to 60% (as a correction would): 80% no longer holds and
    # closes, but 50% was passed already in this period, so it does not fire on the way down.
    SpendDay.objects.filter(organization=spend.org).update(credits=Decimal("0.006"))
    with django_capture_on_commit_callbacks():
        assert alerts_evaluate(org=spend.org) == []
    assert not AlertNotification.objects.filter(cleared_at__isnull=True).exists()


def test_a_projects_budget_alerts_on_its_keys_usage_and_names_the_project(
    spend, frozen, django_capture_on_commit_callbacks
):
    from tests.factories import make_api_key, make_project

    research = make_project(org=spend.org, name="Research")
    key, _secret = make_api_key(org=spend.org, project=research, name="r")
    budget = budget_create(org=spend.org, scope="project", project_id=research.pk,
                           period="day", soft_limit=Decimal("0.01"))  # fmt: skip
    # The Default project's key spends nothing of Research's budget.
    usage_records_ingest(org=spend.org, records=[q(1, 90_000)], api_key=spend.key)
    with django_capture_on_commit_callbacks():
        assert alerts_evaluate(org=spend.org) == []
    usage_records_ingest(org=spend.org, records=[q(2, 60_000)], api_key=key)  # 60%
    with django_capture_on_commit_callbacks():
        fired = alerts_evaluate(org=spend.org)
    assert [n.subject for n in fired] == [f"budget:{budget.pk}:50"]
    assert fired[0].figures["project"] == research.pk
    assert fired[0].message.startswith("Project Research day budget reached 50%")
    day = SpendDay.objects.get(organization=spend.org, dimension="p", subject=str(research.pk))
    assert day.credits == Decimal("0.006")
