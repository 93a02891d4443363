"""The Alerts settings pages: who may change rules, the form with its 30-day preview,
the notifications list, and the dismissible banner."""

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role, Tier
from alerts.models import AlertDelivery, AlertKind, AlertNotification, AlertRule
from billing.services import ledger_post
from tests.factories import grant_credits, make_alert_rule, make_member, make_org, make_query

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


def url(name, org, *args):
    return reverse(f"accounts:alerts:{name}", args=[org.slug, *args])


def login(client, *, role=Role.OWNER, org=None):
    member = make_member(role=role, org=org or make_org(tier=Tier.FREE))
    client.force_login(member.user)
    return member


def rule_post(kind="balance", threshold="25", **extra):
    return {
        "kind": kind,
        "threshold": threshold,
        "enabled": "on",
        "notify_email": "on",
        "webhook_url": "",
        "action": "save",
        **extra,
    }


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_owners_and_admins_add_edit_and_delete_rules(client, role):
    org = login(client, role=role).organization
    response = client.post(url("rule_new", org), rule_post())
    assert response.status_code == 302
    rule = AlertRule.objects.get(organization=org)
    assert (rule.kind, rule.threshold, rule.enabled) == ("balance", D("25"), True)

    response = client.post(url("rule_edit", org, rule.pk), rule_post(threshold="5", enabled=""))
    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.threshold, rule.enabled) == (D("5"), False)

    assert client.post(url("rule_delete", org, rule.pk)).status_code == 302
    assert not AlertRule.objects.filter(organization=org).exists()


@pytest.mark.parametrize("role", [Role.MEMBER, Role.VIEWER])
def test_members_and_viewers_read_rules_but_cannot_change_them(client, role):
    org = login(client, role=role).organization
    rule = make_alert_rule(org=org, kind=AlertKind.BALANCE, threshold=10)
    page = client.get(url("rules", org))
    assert page.status_code == 200
    assert "The credit balance falls below 10.00 credits." in page.text
    assert "webhook-secret" not in page.text
    assert client.get(url("rule_new", org)).status_code == 403
    assert client.post(url("rule_new", org), rule_post()).status_code == 403
    assert client.post(url("rule_edit", org, rule.pk), rule_post(threshold="1")).status_code == 403
    assert client.post(url("rule_delete", org, rule.pk)).status_code == 403
    assert (
        client.get(url("rule_preview", org), {"kind": "balance", "threshold": "5"}).status_code
        == 403
    )
    assert client.post(url("webhook_secret_rotate", org)).status_code == 403
    rule.refresh_from_db()
    assert rule.threshold == D("10")
    assert AlertRule.objects.count() == 1


def test_another_organizations_pages_and_rules_are_404(client):
    mine = login(client).organization
    theirs = make_org()
    their_rule = make_alert_rule(org=theirs, kind=AlertKind.BALANCE, threshold=10)
    for name, args in [("rules", []), ("rule_new", []), ("notifications", [])]:
        assert client.get(url(name, theirs, *args)).status_code == 404
    assert client.post(url("rule_new", theirs), rule_post()).status_code == 404
    # Their rule's id under my organization's URL is not found either.
    assert client.get(url("rule_edit", mine, their_rule.pk)).status_code == 404
    assert client.post(url("rule_edit", mine, their_rule.pk), rule_post()).status_code == 404
    assert client.post(url("rule_delete", mine, their_rule.pk)).status_code == 404
    assert AlertRule.objects.filter(organization=theirs).count() == 1


def test_anonymous_visitors_are_sent_to_login(client):
    org = make_org()
    response = client.get(url("rules", org))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize(
    ("kind", "threshold", "error"),
    [
        ("tokens", "0", "from 1"),
        ("rate_limits", "2.5", "whole number"),
        ("controller_offline", "0", "from 1"),
        ("balance", "-1", "from 0"),
    ],
)
def test_the_form_refuses_thresholds_out_of_bounds(client, kind, threshold, error):
    org = login(client).organization
    response = client.post(url("rule_new", org), rule_post(kind=kind, threshold=threshold))
    assert response.status_code == 400
    assert error in response.text
    assert not AlertRule.objects.exists()


def test_a_duplicate_rule_is_refused(client):
    org = login(client).organization
    make_alert_rule(org=org, kind=AlertKind.BALANCE, threshold=25)
    response = client.post(url("rule_new", org), rule_post())
    assert response.status_code == 400 and "exists" in response.text


def test_a_private_webhook_url_is_refused_by_the_form(client, settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False
    org = login(client).organization
    response = client.post(url("rule_new", org), rule_post(webhook_url="http://127.0.0.1:9/hook"))
    assert response.status_code == 400
    assert "public internet addresses only" in response.text
    assert not AlertRule.objects.exists()


def test_the_preview_shows_when_the_rule_would_have_fired(client):
    """Balance 100; three debits in the last 30 days take it below 50 twice (with a
    top-up in between): the rule would have fired twice."""
    org = login(client).organization
    now = timezone.now()
    ledger_post(
        org=org,
        kind="grant",
        amount=D("100"),
        reason="x",
        idempotency_key="g",
        at=now - timedelta(days=40),
    )
    ledger_post(
        org=org,
        kind="usage",
        amount=D("-60"),
        reason="x",
        idempotency_key="u1",
        at=now - timedelta(days=20),
    )
    ledger_post(
        org=org,
        kind="grant",
        amount=D("30"),
        reason="x",
        idempotency_key="g2",
        at=now - timedelta(days=15),
    )  # 70: cleared
    ledger_post(
        org=org,
        kind="usage",
        amount=D("-25"),
        reason="x",
        idempotency_key="u2",
        at=now - timedelta(days=10),
    )  # 45: fires again
    ledger_post(
        org=org,
        kind="usage",
        amount=D("-5"),
        reason="x",
        idempotency_key="u3",
        at=now - timedelta(days=5),
    )  # 40: still below, no new crossing

    page = client.get(url("rule_preview", org), {"kind": "balance", "threshold": "50"}, headers=HX)
    assert page.status_code == 200
    assert "<html" not in page.text and 'id="alert-preview"' in page.text
    assert "would have fired <strong>2 times</strong>" in page.text
    assert "balance 40.00" in page.text and "balance 45.00" in page.text

    # Without JavaScript: the Preview button re-renders the whole form with it, saving nothing.
    page = client.post(url("rule_new", org), rule_post(threshold="50", action="preview"))
    assert page.status_code == 200 and "2 times" in page.text
    assert not AlertRule.objects.exists()

    page = client.get(url("rule_preview", org), {"kind": "balance", "threshold": "10"}, headers=HX)
    assert "would not have fired" in page.text


def test_the_tokens_preview_counts_month_to_date_per_day(client):
    org = login(client).organization  # free: 100,000 tokens
    now = timezone.now()
    make_query(
        org=org, occurred_at=now - timedelta(minutes=5), input_tokens=85_000, output_tokens=0
    )
    page = client.get(url("rule_preview", org), {"kind": "tokens", "threshold": "80"}, headers=HX)
    assert "1 time" in page.text and "85% (85,000 tokens)" in page.text


def test_only_this_organizations_figures_reach_the_preview(client):
    org = login(client).organization
    other = make_org()
    grant_credits(org=other, amount="5")  # the other one is below 50; this one has nothing
    ledger_post(org=org, kind="grant", amount=D("500"), reason="x", idempotency_key="g")
    page = client.get(url("rule_preview", org), {"kind": "balance", "threshold": "50"}, headers=HX)
    assert "would not have fired" in page.text


def test_notifications_list_with_delivery_attempts_for_managers(client):
    member = login(client)
    org = member.organization
    rule = make_alert_rule(org=org, kind=AlertKind.BALANCE, threshold=10)
    n = AlertNotification.objects.create(
        organization=org, rule=rule, kind=rule.kind, message="The credit balance is 3.00"
    )
    AlertDelivery.objects.create(
        organization=org,
        notification=n,
        channel="webhook",
        target="https://x.test/h",
        attempt=1,
        status="failed",
        response_code=500,
        error="answered 500",
    )
    AlertDelivery.objects.create(
        organization=org,
        notification=n,
        channel="webhook",
        target="https://x.test/h",
        attempt=2,
        status="sent",
        response_code=200,
    )
    page = client.get(url("notifications", org))
    assert page.status_code == 200
    assert "The credit balance is 3.00" in page.text and "In effect" in page.text
    assert "Webhook #1: Failed (500)" in page.text and "Webhook #2: Sent (200)" in page.text

    viewer = make_member(org=org, role=Role.VIEWER)
    client.force_login(viewer.user)
    page = client.get(url("notifications", org))
    assert "The credit balance is 3.00" in page.text and "Webhook #1" not in page.text


def test_the_banner_shows_open_alerts_until_each_member_dismisses_them(client):
    member = login(client, role=Role.MEMBER)
    org = member.organization
    colleague = make_member(org=org, role=Role.VIEWER)
    rule = make_alert_rule(org=org, kind=AlertKind.BALANCE, threshold=10)
    n = AlertNotification.objects.create(
        organization=org, rule=rule, kind=rule.kind, message="The credit balance is 3.00"
    )
    main = reverse("main", args=[org.slug])
    assert 'data-testid="alert-banner"' in client.get(main).text

    response = client.post(url("notification_dismiss", org, n.pk), {"next": main})
    assert response.status_code == 302 and response["Location"] == main
    assert 'data-testid="alert-banner"' not in client.get(main).text

    client.force_login(colleague.user)  # dismissed for one member only
    assert "The credit balance is 3.00" in client.get(main).text
    response = client.post(url("notification_dismiss", org, n.pk), headers=HX)
    assert response.status_code == 200 and response.text == ""
    assert 'data-testid="alert-banner"' not in client.get(main).text


def test_a_cleared_alert_leaves_the_banner_and_another_orgs_alert_never_shows(client):
    member = login(client)
    org = member.organization
    other = make_org()
    rule = make_alert_rule(org=other, kind=AlertKind.BALANCE, threshold=10)
    AlertNotification.objects.create(
        organization=other, rule=rule, kind=rule.kind, message="theirs"
    )
    mine = make_alert_rule(org=org, kind=AlertKind.BALANCE, threshold=10)
    AlertNotification.objects.create(
        organization=org, rule=mine, kind=mine.kind, message="mine", cleared_at=timezone.now()
    )
    page = client.get(reverse("main", args=[org.slug])).text
    assert 'data-testid="alert-banner"' not in page and "theirs" not in page
    n = AlertNotification.objects.get(message="theirs")
    assert client.post(url("notification_dismiss", org, n.pk)).status_code == 404


def test_the_dismiss_redirect_stays_on_this_site(client):
    org = login(client).organization
    rule = make_alert_rule(org=org, kind=AlertKind.BALANCE, threshold=10)
    n = AlertNotification.objects.create(organization=org, rule=rule, kind=rule.kind, message="m")
    response = client.post(url("notification_dismiss", org, n.pk), {"next": "https://evil.test/"})
    assert response["Location"] == url("notifications", org)


def test_settings_links_to_alerts_and_managers_see_and_rotate_the_secret(client):
    from alerts.models import AlertSettings

    org = login(client).organization
    settings_page = client.get(reverse("accounts:organization_settings", args=[org.slug]))
    assert url("rules", org) in settings_page.text
    assert client.post(url("webhook_secret_rotate", org)).status_code == 302
    first = AlertSettings.objects.get(organization=org).webhook_secret
    assert first in client.get(url("rules", org)).text
    client.post(url("webhook_secret_rotate", org))
    assert AlertSettings.objects.get(organization=org).webhook_secret != first


# ---- the preview's replay of each kind (figures by hand)


def test_preview_of_rate_limits_per_clock_hour():
    from alerts.preview import alert_rule_preview
    from spend.models import RateLimitRefusal
    from tests.factories import make_api_key

    org = make_org()
    key, _ = make_api_key(org=org)
    now = timezone.now().replace(minute=30, second=0, microsecond=0)
    hour = now.replace(minute=0) - timedelta(days=3)
    for minute, count in [
        (hour, 4),
        (hour + timedelta(minutes=5), 3),  # 7 in one hour
        (hour + timedelta(hours=1), 9),  # still above: same crossing
        (hour + timedelta(hours=5), 8),
    ]:  # a new crossing
        RateLimitRefusal.objects.create(organization=org, api_key=key, minute=minute, count=count)
    preview = alert_rule_preview(org=org, kind="rate_limits", threshold=D("5"), now=now)
    assert [(e.at, e.message) for e in preview.events] == [
        (hour, "7 refused in the hour"),
        (hour + timedelta(hours=5), "8 refused in the hour"),
    ]


def test_preview_of_unusual_usage_against_the_median_before_each_day():
    from alerts.preview import alert_rule_preview

    org = make_org(time_zone="UTC")
    grant_credits(org=org, amount="1000")
    now = timezone.now().replace(hour=23, minute=0)
    spend = {d: D("2") for d in range(1, 45)}  # 2 a day for 44 days: median 2
    spend[10] = D("7")  # > 3 × 2: fires 10 days ago
    spend[9] = D("6.5")  # still above the next day: the same crossing
    spend[3] = D("6")  # exactly 3 × 2: not more
    for days_ago, amount in spend.items():
        ledger_post(org=org, kind="usage", amount=-amount, reason="x",
                    idempotency_key=f"d{days_ago}", at=now - timedelta(days=days_ago))  # fmt: skip
    preview = alert_rule_preview(org=org, kind="unusual_usage", threshold=D("3"), now=now)
    assert [e.at for e in preview.events] == [(now - timedelta(days=10)).date()]
    assert preview.events[0].message == "7.00 credits, median 2.00"


def test_preview_of_usage_time_uses_the_balance_at_todays_rate():
    from alerts.preview import alert_rule_preview
    from billing.models import WorkerType

    org = make_org()
    rate = WorkerType.objects.get(is_default=True).hourly_rate
    now = timezone.now()
    ledger_post(org=org, kind="grant", amount=rate * 48, reason="x", idempotency_key="g",
                at=now - timedelta(days=20))  # fmt: skip
    ledger_post(org=org, kind="usage", amount=-rate * 30, reason="x", idempotency_key="u",
                at=now - timedelta(days=2))  # fmt: skip
    preview = alert_rule_preview(org=org, kind="usage_time", threshold=D("24"), now=now)
    assert [e.message for e in preview.events] == ["about 18 hours left"]


def test_preview_of_controllers_is_their_state_now():
    from alerts.preview import alert_rule_preview
    from tests.factories import make_controller
    from usage.models import Controller

    org = make_org()
    now = timezone.now()
    away, _ = make_controller(org=org, name="dgx-away")
    here, _ = make_controller(org=org, name="dgx-here")
    Controller.objects.filter(pk=away.pk).update(last_heartbeat_at=now - timedelta(hours=2))
    Controller.objects.filter(pk=here.pk).update(last_heartbeat_at=now)
    preview = alert_rule_preview(org=org, kind="controller_offline", threshold=D("15"), now=now)
    assert len(preview.events) == 1 and "dgx-away" in preview.events[0].message
    assert "not kept" in preview.note
