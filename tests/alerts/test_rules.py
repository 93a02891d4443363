"""Alert rules: each fires once per crossing (one email, one notification), re-arms only
after its condition clears, and sees only its own organization's figures."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.core import mail
from django.db import connection

from accounts.models import Role, Tier
from accounts.services import organization_create
from alerts.models import (
    AlertDelivery,
    AlertKind,
    AlertNotification,
    AlertRule,
    AlertSettings,
)
from alerts.services import (
    RuleFields,
    alert_rule_delete,
    alert_rule_update,
    alerts_evaluate,
)
from alerts.tasks import alert_email_deliver, alerts_evaluate_due
from billing.models import WorkerType
from billing.services import ledger_post
from spend.models import RateLimitRefusal
from tests.factories import (
    grant_credits,
    make_alert_rule,
    make_api_key,
    make_controller,
    make_member,
    make_org,
    make_query,
)
from usage.models import Controller

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def org():
    org = make_org(tier=Tier.FREE)  # 100,000 tokens a month
    make_member(org=org, role=Role.OWNER)
    make_member(org=org, role=Role.ADMIN)
    make_member(org=org, role=Role.MEMBER)
    make_member(org=org, role=Role.VIEWER)
    return org


def managers(org):
    return sorted(
        org.memberships.filter(role__in=["owner", "admin"]).values_list("user__email", flat=True)
    )


def check(org, *, notifications, emails):
    assert AlertNotification.objects.filter(organization=org).count() == notifications
    assert len(mail.outbox) == emails
    for message in mail.outbox:
        assert sorted(message.to) == managers(org)  # owners and admins, no one else


def debit(org, amount, at, key):
    ledger_post(org=org, kind="usage", amount=-D(amount), reason="use", idempotency_key=key, at=at)


# ---------------------------------------------------------------- each rule


def test_tokens_percent_of_allocation(org, evaluate):
    make_alert_rule(org=org, kind=AlertKind.TOKENS, threshold=80)
    make_query(
        org=org, occurred_at=NOW - timedelta(days=3), input_tokens=40_000, output_tokens=39_999
    )
    assert evaluate(org, NOW) == []  # 79,999 of 100,000
    check(org, notifications=0, emails=0)

    make_query(org=org, occurred_at=NOW - timedelta(hours=1), input_tokens=1, output_tokens=0)
    fired = evaluate(org, NOW)  # exactly 80%
    assert len(fired) == 1
    check(org, notifications=1, emails=1)
    notification = fired[0]
    assert notification.figures["used"] == 80_000 and notification.figures["allocation"] == 100_000
    assert "80" in mail.outbox[0].body and notification.message in mail.outbox[0].body

    make_query(org=org, occurred_at=NOW, input_tokens=5_000, output_tokens=0)
    evaluate(org, NOW + timedelta(minutes=5))  # still above: no repeat
    evaluate(org, NOW + timedelta(minutes=10))
    check(org, notifications=1, emails=1)

    december = datetime(2026, 12, 1, 0, 5, tzinfo=UTC)  # a new month: back to zero, re-armed
    evaluate(org, december)
    notification.refresh_from_db()
    assert notification.cleared_at == december
    check(org, notifications=1, emails=1)

    make_query(org=org, occurred_at=december, input_tokens=90_000, output_tokens=0)
    evaluate(org, december + timedelta(minutes=5))
    check(org, notifications=2, emails=2)


def test_tokens_at_80_and_100_are_separate_crossings(org, evaluate):
    make_alert_rule(org=org, kind=AlertKind.TOKENS, threshold=80)
    make_alert_rule(org=org, kind=AlertKind.TOKENS, threshold=100)
    make_query(org=org, occurred_at=NOW, input_tokens=85_000, output_tokens=0)
    evaluate(org, NOW)
    check(org, notifications=1, emails=1)
    make_query(org=org, occurred_at=NOW, input_tokens=15_000, output_tokens=0)
    evaluate(org, NOW)
    check(org, notifications=2, emails=2)
    assert "100" in mail.outbox[1].body


def test_tokens_rule_never_fires_on_an_unlimited_plan(evaluate):
    org = make_org(tier=Tier.ENTERPRISE)
    make_member(org=org)
    make_alert_rule(org=org, kind=AlertKind.TOKENS, threshold=1)
    make_query(org=org, occurred_at=NOW, input_tokens=10**9, output_tokens=0)
    assert evaluate(org, NOW) == []


def test_balance_below_an_amount(org, evaluate):
    make_alert_rule(org=org, kind=AlertKind.BALANCE, threshold=10)
    grant_credits(org=org, amount="100")
    evaluate(org, NOW)
    check(org, notifications=0, emails=0)

    debit(org, "90", NOW, "u1")  # exactly 10: not below
    evaluate(org, NOW)
    check(org, notifications=0, emails=0)

    debit(org, "0.01", NOW, "u2")  # 9.99
    evaluate(org, NOW)
    check(org, notifications=1, emails=1)
    assert AlertNotification.objects.get().figures["balance"] == "9.99"
    debit(org, "5", NOW, "u3")
    evaluate(org, NOW)
    check(org, notifications=1, emails=1)

    grant_credits(org=org, amount="50")  # back above: cleared, re-armed
    evaluate(org, NOW)
    assert AlertNotification.objects.get().cleared_at is not None
    check(org, notifications=1, emails=1)

    debit(org, "50", NOW, "u4")
    evaluate(org, NOW)
    check(org, notifications=2, emails=2)


def test_remaining_usage_time_below_hours(org, evaluate):
    rate = WorkerType.objects.get(is_default=True).hourly_rate
    make_alert_rule(org=org, kind=AlertKind.USAGE_TIME, threshold=24)
    grant_credits(org=org, amount=str(rate * 30))  # 30 hours
    evaluate(org, NOW)
    check(org, notifications=0, emails=0)

    debit(org, str(rate * 7), NOW, "u1")  # 23 hours left
    evaluate(org, NOW)
    check(org, notifications=1, emails=1)
    assert AlertNotification.objects.get().figures["hours"] == "23"
    evaluate(org, NOW)
    check(org, notifications=1, emails=1)

    grant_credits(org=org, amount=str(rate * 2))  # 25 hours
    evaluate(org, NOW)
    debit(org, str(rate * 2), NOW, "u2")
    evaluate(org, NOW)
    check(org, notifications=2, emails=2)


def test_rate_limits_hit_more_than_n_times_in_an_hour(org, evaluate):
    key, _ = make_api_key(org=org)
    make_alert_rule(org=org, kind=AlertKind.RATE_LIMITS, threshold=10)

    def refused(minute, count):
        RateLimitRefusal.objects.create(organization=org, api_key=key, minute=minute, count=count)

    refused(NOW - timedelta(minutes=90), 500)  # older than an hour: does not count
    refused(NOW - timedelta(minutes=50), 6)
    refused(NOW - timedelta(minutes=10), 4)
    evaluate(org, NOW)  # 10: not more than 10
    check(org, notifications=0, emails=0)

    refused(NOW - timedelta(minutes=1), 1)  # 11
    evaluate(org, NOW)
    check(org, notifications=1, emails=1)
    assert AlertNotification.objects.get().figures["refused_last_hour"] == 11
    evaluate(org, NOW + timedelta(minutes=5))
    check(org, notifications=1, emails=1)

    later = NOW + timedelta(hours=2)  # the hour passed without refusals: cleared
    evaluate(org, later)
    check(org, notifications=1, emails=1)
    refused(later - timedelta(minutes=2), 20)
    evaluate(org, later)
    check(org, notifications=2, emails=2)


def test_unusual_usage_against_the_14_day_median(org, evaluate):
    make_alert_rule(org=org, kind=AlertKind.UNUSUAL_USAGE, threshold=3)
    grant_credits(org=org, amount="1000")
    # 14 days before today: medians by hand. Ten days of 1.00 and four of 5.00: median 1.00.
    for i in range(1, 15):
        debit(org, "5" if i <= 4 else "1", NOW - timedelta(days=i), f"d{i}")
    today = NOW.replace(hour=0, minute=30)
    debit(org, "3", today, "t1")  # 3.00 is not more than 3 × 1.00
    evaluate(org, NOW)
    check(org, notifications=0, emails=0)

    debit(org, "0.5", today + timedelta(hours=1), "t2")  # 3.50 > 3.00
    evaluate(org, NOW)
    check(org, notifications=1, emails=1)
    figures = AlertNotification.objects.get().figures
    assert (figures["today"], figures["median_14d"]) == ("3.5", "1")
    evaluate(org, NOW + timedelta(hours=2))
    check(org, notifications=1, emails=1)

    tomorrow = NOW + timedelta(days=1)  # a new day starts at zero: cleared
    evaluate(org, tomorrow)
    assert AlertNotification.objects.get().cleared_at is not None
    debit(org, "10", tomorrow, "t3")
    evaluate(org, tomorrow)
    check(org, notifications=2, emails=2)


def test_unusual_usage_needs_a_baseline(org, evaluate):
    make_alert_rule(org=org, kind=AlertKind.UNUSUAL_USAGE, threshold=3)
    grant_credits(org=org, amount="1000")
    debit(org, "500", NOW, "first-day")  # no usage in the 14 days before: median 0
    assert evaluate(org, NOW) == []


def test_controller_offline_longer_than_m_minutes(org, evaluate):
    make_alert_rule(org=org, kind=AlertKind.CONTROLLER_OFFLINE, threshold=15)
    dgx, _ = make_controller(org=org, name="dgx-01")
    other, _ = make_controller(org=org, name="dgx-02")
    Controller.objects.filter(pk__in=[dgx.pk, other.pk]).update(last_heartbeat_at=NOW)

    evaluate(org, NOW + timedelta(minutes=15))  # exactly 15: not longer
    check(org, notifications=0, emails=0)
    Controller.objects.filter(pk=other.pk).update(last_heartbeat_at=NOW + timedelta(minutes=10))
    evaluate(org, NOW + timedelta(minutes=16))
    check(org, notifications=1, emails=1)
    notification = AlertNotification.objects.get()
    assert notification.subject == f"controller:{dgx.pk}"
    assert "dgx-01" in mail.outbox[0].body
    assert mail.outbox[0].subject == f"[Usage Console] {org.name}: controller dgx-01 offline"

    evaluate(org, NOW + timedelta(minutes=30))  # dgx-01 still offline, and now dgx-02 too
    check(org, notifications=2, emails=2)
    Controller.objects.filter(pk=dgx.pk).update(last_heartbeat_at=NOW + timedelta(minutes=31))
    evaluate(org, NOW + timedelta(minutes=32))  # back: dgx-01's crossing clears
    notification.refresh_from_db()
    assert notification.cleared_at is not None
    evaluate(org, NOW + timedelta(minutes=50))  # offline again: a new crossing
    check(org, notifications=3, emails=3)


# ---------------------------------------------------------------- lifecycle


def test_disabled_rules_do_not_fire_and_close_their_crossing(org, evaluate):
    rule = make_alert_rule(org=org, kind=AlertKind.BALANCE, threshold=10)
    evaluate(org, NOW)
    check(org, notifications=1, emails=1)
    alert_rule_update(
        rule=rule, fields=RuleFields(kind="balance", threshold=D("10"), enabled=False)
    )
    evaluate(org, NOW)
    assert AlertNotification.objects.get().cleared_at is not None
    evaluate(org, NOW)
    check(org, notifications=1, emails=1)


def test_changing_the_threshold_rearms_and_deleting_keeps_history(org, evaluate):
    rule = make_alert_rule(org=org, kind=AlertKind.BALANCE, threshold=10)
    evaluate(org, NOW)
    alert_rule_update(rule=rule, fields=RuleFields(kind="balance", threshold=D("20")))
    evaluate(org, NOW)
    check(org, notifications=2, emails=2)
    alert_rule_delete(rule=rule)
    assert AlertNotification.objects.filter(cleared_at__isnull=True).count() == 0
    assert AlertNotification.objects.count() == 2


def test_console_only_rule_records_but_mails_nobody(org, evaluate):
    make_alert_rule(org=org, kind=AlertKind.BALANCE, threshold=10, notify_email=False)
    evaluate(org, NOW)
    check(org, notifications=1, emails=0)


def test_the_email_task_is_safe_to_run_twice(org, evaluate):
    make_alert_rule(org=org, kind=AlertKind.BALANCE, threshold=10)
    (notification,) = evaluate(org, NOW)
    alert_email_deliver.delay(notification.pk)
    alert_email_deliver.delay(notification.pk)
    assert len(mail.outbox) == 1
    delivery = AlertDelivery.objects.get()
    assert (delivery.channel, delivery.status, delivery.attempt) == ("email", "sent", 1)


def test_an_open_crossing_is_unique_in_the_database(org):
    from django.db import IntegrityError, transaction

    rule = make_alert_rule(org=org, kind=AlertKind.BALANCE, threshold=10)
    AlertNotification.objects.create(organization=org, rule=rule, kind=rule.kind, message="a")
    with pytest.raises(IntegrityError), transaction.atomic():
        AlertNotification.objects.create(organization=org, rule=rule, kind=rule.kind, message="b")
    # A closed crossing does not block the next one.
    AlertNotification.objects.update(cleared_at=NOW)
    AlertNotification.objects.create(organization=org, rule=rule, kind=rule.kind, message="c")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_evaluations_at_once_send_one_email():
    org = make_org(tier=Tier.FREE)
    make_member(org=org, role=Role.OWNER)
    make_alert_rule(org=org, kind=AlertKind.BALANCE, threshold=10)
    barrier = threading.Barrier(4)
    errors = []

    def run():
        try:
            barrier.wait()
            alerts_evaluate(org=org, now=NOW)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert AlertNotification.objects.count() == 1
    assert len(mail.outbox) == 1


# ---------------------------------------------------------------- scope and defaults

CROSSINGS = {
    # kind: (threshold, make organization A cross it)
    AlertKind.TOKENS: (80, lambda o: make_query(org=o, occurred_at=NOW, input_tokens=90_000)),
    AlertKind.BALANCE: (500, lambda o: debit(o, "600", NOW, "a")),
    AlertKind.USAGE_TIME: (1000, lambda o: debit(o, "600", NOW, "a")),
    AlertKind.RATE_LIMITS: (
        5,
        lambda o: RateLimitRefusal.objects.create(
            organization=o, api_key=make_api_key(org=o)[0], minute=NOW, count=50
        ),
    ),
    AlertKind.UNUSUAL_USAGE: (
        3,
        lambda o: (
            [debit(o, "1", NOW - timedelta(days=i), f"d{i}") for i in range(1, 15)]
            + [debit(o, "100", NOW, "today")]
        ),
    ),
    AlertKind.CONTROLLER_OFFLINE: (
        15,
        lambda o: Controller.objects.filter(pk=make_controller(org=o)[0].pk).update(
            last_heartbeat_at=NOW - timedelta(hours=1)
        ),
    ),
}


@pytest.mark.parametrize("kind", list(CROSSINGS))
def test_no_rule_sees_another_organizations_figures(kind, evaluate):
    threshold, cross = CROSSINGS[kind]
    a, b = make_org(tier=Tier.FREE), make_org(tier=Tier.FREE)
    a_owner, b_owner = make_member(org=a), make_member(org=b)
    for org in (a, b):
        grant_credits(org=org, amount="1000")
        make_alert_rule(org=org, kind=kind, threshold=threshold)
    online, _ = make_controller(org=b)
    Controller.objects.filter(pk=online.pk).update(last_heartbeat_at=NOW)
    cross(a)

    assert evaluate(b, NOW) == []
    assert len(evaluate(a, NOW)) == 1
    assert evaluate(b, NOW) == []
    assert [m.to for m in mail.outbox] == [[a_owner.user.email]]
    assert b_owner.user.email not in mail.outbox[0].to
    assert not AlertNotification.objects.filter(organization=b).exists()


def test_new_organizations_get_the_default_rules():
    new = organization_create(name="Acme", owner_email="ana@example.com")
    rules = AlertRule.objects.filter(organization=new.organization)
    assert sorted((r.kind, r.threshold) for r in rules) == [
        ("balance", D("10")),
        ("tokens", D("80")),
        ("tokens", D("100")),
    ]
    assert AlertSettings.objects.get(organization=new.organization).webhook_secret


def test_the_data_migration_gives_existing_organizations_the_defaults():
    import importlib

    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    # The models as they were at that migration (alerts were part of billing then).
    apps = MigrationLoader(connection).project_state(("billing", "0005_alert_defaults")).apps
    # Their tables have been renamed since (alerts_*): point the old models at them.
    for name in ("AlertRule", "AlertSettings"):
        apps.get_model("billing", name)._meta.db_table = f"alerts_{name.lower()}"
    org = make_org()
    make_alert_rule(org=org, kind=AlertKind.TOKENS, threshold=80)  # kept, not duplicated
    migration = importlib.import_module("billing.migrations.0005_alert_defaults")
    migration.forwards(apps, None)
    migration.forwards(apps, None)
    assert AlertRule.objects.filter(organization=org).count() == 3
    assert AlertSettings.objects.filter(organization=org).count() == 1


def test_the_beat_task_evaluates_every_organization_with_a_rule(django_capture_on_commit_callbacks):
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["alerts-evaluate"]
    assert entry["task"] == "alerts.tasks.alerts_evaluate_due" and entry["schedule"] <= 600
    a, b, quiet = make_org(), make_org(), make_org()
    for org in (a, b):
        make_member(org=org)
        make_alert_rule(org=org, kind=AlertKind.BALANCE, threshold=10)
    make_alert_rule(org=quiet, kind=AlertKind.BALANCE, threshold=10, enabled=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts_evaluate_due.delay().get() == 2
    assert set(AlertNotification.objects.values_list("organization", flat=True)) == {a.pk, b.pk}
    assert len(mail.outbox) == 2
