"""Alert rules scoped to a project: the figure is that project's (spend sent through its
keys, its keys' refusals, its controllers), the sentence names it, only kinds kept per
project accept one, and a member limited to projects sees their projects' rules and
notifications only (another project's answer 404)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine
from django.urls import reverse

from accounts.models import Role
from accounts.projects import project_grant_set
from alerts.models import AlertKind, AlertNotification
from alerts.services import AlertRuleInvalid, RuleFields, alert_rule_create
from ingest.services.ingest import usage_records_ingest
from spend.models import RateLimitRefusal, SpendDay
from tests.factories import (
    grant_credits,
    make_alert_rule,
    make_api_key,
    make_controller,
    make_member,
    make_org,
    make_project,
    make_user,
)
from usage.models import Controller

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def world():
    org = make_org()
    org.time_zone = "UTC"
    org.save()
    owner = make_member(org=org, role=Role.OWNER)
    research = make_project(org=org, name="Research")
    production = make_project(org=org, name="Production app")
    return {"org": org, "owner": owner, "research": research, "production": production}


def spend(org, key, client_id, millions):
    """Send one query of llama-3.1-8b (0.10 credits per million tokens) with the key."""
    record = {"id": client_id, "kind": "query", "model": "llama-3.1-8b",
              "input_tokens": millions * 1_000_000, "output_tokens": 0,
              "occurred_at": NOW.isoformat()}  # fmt: skip
    with time_machine.travel(NOW, tick=False):
        usage_records_ingest(org=org, api_key=key, records=[record])


def fired(rule):
    return AlertNotification.objects.filter(rule=rule).count()


def test_unusual_usage_of_a_project_fires_on_its_spend_only(world, evaluate):
    org, research, production = world["org"], world["research"], world["production"]
    grant_credits(org=org, amount="1000")
    # Both projects spent 1.00 a day for the 14 days before: a median of 1.00 each.
    SpendDay.objects.bulk_create(
        SpendDay(organization=org, dimension="p", subject=str(p.pk),
                 day=(NOW - timedelta(days=i)).date(), credits=D("1"))
        for p in (research, production) for i in range(1, 15)
    )  # fmt: skip
    on_research = make_alert_rule(org=org, kind=AlertKind.UNUSUAL_USAGE, threshold=3,
                                  project=research)  # fmt: skip
    on_production = make_alert_rule(org=org, kind=AlertKind.UNUSUAL_USAGE, threshold=3,
                                    project=production)  # fmt: skip
    key_r, _ = make_api_key(org=org, project=research)
    key_p, _ = make_api_key(org=org, project=production)

    spend(org, key_p, "p1", 50)  # Production app: 5.00 today, more than 3 × 1.00
    evaluate(org, NOW)
    assert (fired(on_research), fired(on_production)) == (0, 1)
    notification = AlertNotification.objects.get(rule=on_production)
    assert notification.figures["today"] == "5"
    assert notification.message.startswith("In project Production app, today's usage is 5.00")

    spend(org, key_r, "r1", 20)  # Research: 2.00, not more than 3.00
    evaluate(org, NOW)
    assert fired(on_research) == 0
    spend(org, key_r, "r2", 11)  # Research: 3.10
    evaluate(org, NOW)
    assert (fired(on_research), fired(on_production)) == (1, 1)


def test_rate_limits_and_controllers_of_a_project(world, evaluate):
    org, research, production = world["org"], world["research"], world["production"]
    refusals = make_alert_rule(org=org, kind=AlertKind.RATE_LIMITS, threshold=5, project=research)
    offline = make_alert_rule(org=org, kind=AlertKind.CONTROLLER_OFFLINE, threshold=15,
                              project=research)  # fmt: skip
    key_p, _ = make_api_key(org=org, project=production)
    RateLimitRefusal.objects.create(organization=org, api_key=key_p, minute=NOW, count=50)
    make_controller(org=org, name="prod-ctl", project=production)
    Controller.objects.update(last_heartbeat_at=NOW - timedelta(hours=2))
    evaluate(org, NOW)
    assert (fired(refusals), fired(offline)) == (0, 0)  # the other project's figures

    key_r, _ = make_api_key(org=org, project=research)
    RateLimitRefusal.objects.create(organization=org, api_key=key_r, minute=NOW, count=6)
    ctl, _ = make_controller(org=org, name="research-ctl", project=research)
    Controller.objects.filter(pk=ctl.pk).update(last_heartbeat_at=NOW - timedelta(hours=2))
    evaluate(org, NOW)
    assert (fired(refusals), fired(offline)) == (1, 1)
    assert AlertNotification.objects.get(rule=refusals).figures["refused_last_hour"] == 6
    assert AlertNotification.objects.get(rule=offline).subject == f"controller:{ctl.pk}"


def test_the_sentence_names_the_project_and_org_wide_kinds_refuse_one(world):
    org, owner, research = world["org"], world["owner"], world["research"]
    rule = alert_rule_create(
        org=org,
        fields=RuleFields(kind=AlertKind.UNUSUAL_USAGE, threshold=D("3"), project_id=research.pk),
        actor=owner.user,
    )
    assert rule.sentence == (
        "In project Research, today's usage passes 3 × the median day of the last 14."
    )
    # The same kind and threshold for the whole organization is another rule.
    alert_rule_create(org=org, fields=RuleFields(kind=AlertKind.UNUSUAL_USAGE, threshold=D("3")))
    with pytest.raises(AlertRuleInvalid) as refused:
        alert_rule_create(
            org=org, fields=RuleFields(kind=AlertKind.BALANCE, threshold=D("5"),
                                       project_id=research.pk)
        )  # fmt: skip
    assert refused.value.field == "project"
    theirs = make_project(org=make_org(), name="Theirs")
    with pytest.raises(AlertRuleInvalid):
        fields = RuleFields(kind=AlertKind.RATE_LIMITS, threshold=D("5"), project_id=theirs.pk)
        alert_rule_create(org=org, fields=fields)


def test_the_form_carries_the_project(client, world):
    org, research = world["org"], world["research"]
    client.force_login(world["owner"].user)
    new = reverse("accounts:alerts:rule_new", args=[org.slug])
    assert "The whole organization" in client.get(new).content.decode()
    post = {"kind": "rate_limits", "threshold": "10", "enabled": "on", "notify_email": "on",
            "webhook_url": "", "action": "save"}  # fmt: skip
    response = client.post(new, {**post, "project": research.pk})
    assert response.status_code == 302
    assert org.alert_rules.get(kind="rate_limits").project == research
    page = client.get(reverse("accounts:alerts:rules", args=[org.slug])).content.decode()
    assert "In project Research, rate limits refuse more than 10" in page
    # Another organization's project, or a kind of the whole organization: refused.
    theirs = make_project(org=make_org())
    assert client.post(new, {**post, "project": theirs.pk}).status_code == 400
    balance = client.post(new, {**post, "kind": "balance", "project": research.pk})
    assert balance.status_code == 400 and "watches the whole organization" in balance.text


def test_a_limited_member_sees_only_their_projects_rules_and_alerts(client, world, evaluate):
    org, owner = world["org"], world["owner"]
    research, production = world["research"], world["production"]
    member = make_member(org=org, user=make_user(), role=Role.MEMBER)
    project_grant_set(project=research, membership=member, role="member", actor=owner.user)
    mine = make_alert_rule(org=org, kind=AlertKind.RATE_LIMITS, threshold=0, project=research)
    others = make_alert_rule(org=org, kind=AlertKind.RATE_LIMITS, threshold=1, project=production)
    for project, count in ((research, 2), (production, 3)):
        key, _ = make_api_key(org=org, project=project)
        RateLimitRefusal.objects.create(organization=org, api_key=key, minute=NOW, count=count)
    make_alert_rule(org=org, kind=AlertKind.BALANCE, threshold=10)  # organization-wide: fires
    evaluate(org, NOW)
    assert AlertNotification.objects.count() == 3
    theirs = AlertNotification.objects.get(rule=others)

    client.force_login(member.user)
    page = client.get(reverse("accounts:alerts:rules", args=[org.slug])).content.decode()
    assert "In project Research" in page and "Production app" not in page
    # Neither the organization-wide rule nor its crossing (rules, recent list, banner).
    assert "The credit balance falls below" not in page and "The credit balance is" not in page
    listing = client.get(reverse("accounts:alerts:notifications", args=[org.slug]))
    assert [n.rule_id for n, _ in listing.context["rows"]] == [mine.pk]
    dismiss = reverse("accounts:alerts:notification_dismiss", args=[org.slug, theirs.pk])
    assert client.post(dismiss).status_code == 404
    assert (
        client.get(reverse("accounts:alerts:rule_edit", args=[org.slug, others.pk])).status_code
        == 403
    )
    # Everyone else sees all three.
    client.force_login(owner.user)
    listing = client.get(reverse("accounts:alerts:notifications", args=[org.slug]))
    assert len(listing.context["rows"]) == 3
