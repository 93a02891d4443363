"""How alerts read: one banner at a time with how many more wait, dismissing shows the
next; rules as sentences; an offline controller's time in days, not minutes."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role, Tier
from alerts.models import AlertKind, AlertNotification, rule_sentence
from alerts.selectors import controller_conditions
from tests.factories import make_alert_rule, make_member, make_org

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


def _three_alerts(org):
    rule = make_alert_rule(org=org, kind=AlertKind.BALANCE, threshold=10)
    now = timezone.now()
    return [
        AlertNotification.objects.create(
            organization=org,
            rule=rule,
            kind=rule.kind,
            subject=f"s{i}",
            message=f"Alert number {i}",
            fired_at=now - timedelta(minutes=10 - i),
        )  # fmt: skip
        for i in range(3)
    ]


def test_the_banner_shows_the_newest_alert_and_says_how_many_more(client):
    member = make_member(role=Role.MEMBER, org=make_org(tier=Tier.FREE))
    org = member.organization
    first, second, newest = _three_alerts(org)
    client.force_login(member.user)
    main = reverse("main", args=[org.slug])
    page = client.get(main).text
    assert page.count('class="alert-banner-item"') == 1
    assert "Alert number 2" in page and "Alert number 1" not in page
    assert "and 2 more alerts" in page

    dismiss = reverse("accounts:alerts:notification_dismiss", args=[org.slug, newest.pk])
    swapped = client.post(dismiss, headers={**HX, "HX-Current-URL": f"http://testserver{main}"})
    # The banner is swapped for the next one, which says one more waits.
    assert swapped.status_code == 200
    assert "Alert number 1" in swapped.text and "and 1 more alert<" in swapped.text
    assert f'name="next" value="{main}"' in swapped.text  # back to the page, not the POST

    client.post(reverse("accounts:alerts:notification_dismiss", args=[org.slug, second.pk]))
    page = client.get(main).text
    assert "Alert number 0" in page and "more alert" not in page
    last = client.post(
        reverse("accounts:alerts:notification_dismiss", args=[org.slug, first.pk]), headers=HX
    )
    assert last.text == ""  # nothing left: the banner goes
    assert 'data-testid="alert-banner"' not in client.get(main).text


@pytest.mark.parametrize(
    ("kind", "threshold", "sentence"),
    [
        ("tokens", D("80"), "Monthly tokens reach 80% of the plan's allocation."),
        ("balance", D("10.0000"), "The credit balance falls below 10.00 credits."),
        ("usage_time", D("1"), "Less than 1 hour of usage time remains at the standard worker's "
         "rate."),
        ("usage_time", D("24"), "Less than 24 hours of usage time remains at the standard "
         "worker's rate."),
        ("rate_limits", D("100"), "Rate limits refuse more than 100 requests within an hour."),
        ("unusual_usage", D("3"), "Today's usage passes 3 × the median day of the last 14."),
        ("controller_offline", D("15"), "A controller sends no heartbeat for 15 minutes."),
        ("budget", D("0"), "A budget's spending reaches one of its alert thresholds (by default "
         "50%, 80% and 100% of its soft level)."),
        ("budget", D("80"), "A budget's spending reaches one of its alert thresholds of 80% of "
         "its soft level or more."),
    ],
)  # fmt: skip
def test_rules_read_as_sentences(kind, threshold, sentence):
    assert rule_sentence(kind, threshold) == sentence


def test_the_rules_and_notifications_pages_say_the_budget_rule_in_words(client):
    member = make_member(role=Role.OWNER, org=make_org(tier=Tier.FREE))
    org = member.organization
    rule = make_alert_rule(org=org, kind=AlertKind.BUDGET, threshold=0)
    AlertNotification.objects.create(
        organization=org, rule=rule, kind=rule.kind, subject="budget:1:100",
        message="Organization budget reached 100%.", figures={"threshold": "0"},
    )  # fmt: skip
    client.force_login(member.user)
    for page in ("rules", "notifications"):
        html = client.get(reverse(f"accounts:alerts:{page}", args=[org.slug])).text
        assert "reaches one of its alert thresholds (by default 50%, 80% and 100%" in html
        assert "thresholds (0)" not in html and "0 % of the soft level" not in html


def test_an_offline_controller_says_days_not_thousands_of_minutes():
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    seen = now - timedelta(minutes=4333)
    [condition] = controller_conditions(
        minutes=D("15"),
        controllers=[{"id": 3, "name": "lab-node-03", "last_heartbeat_at": seen,
                      "created_at": seen}],
        now=now,
    )  # fmt: skip
    assert condition.holds
    assert condition.message == (
        "Controller lab-node-03 has been offline for 3 days (alert after 15 minutes)."
    )
    assert condition.figures["offline_minutes"] == 4333  # the webhook keeps the exact figure
