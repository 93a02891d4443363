"""Admin lists of rows that carry a project: each shows the project and filters by it
(the choices name the organization), at a query count that does not grow with the rows."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.projects import project_default_for
from billing.models import PriceModel
from spend.models import Budget, Reservation
from tests.factories import (
    make_alert_rule,
    make_api_key,
    make_controller,
    make_job,
    make_org,
    make_project,
    make_query,
    make_user,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def rows_of(project, n):
    """n rows of every listed kind in the project; returns {admin url name: [pks]}."""
    org = project.organization
    key, _ = make_api_key(org=org, project=project)
    model = PriceModel.objects.get(name="llama-3.1-8b")
    made: dict[str, list[int]] = {}
    for _ in range(n):
        made.setdefault("usage_query", []).append(
            make_query(org=org, occurred_at=NOW, api_key=key, project=project).pk
        )
        made.setdefault("usage_job", []).append(
            make_job(org=org, submitted_at=NOW, api_key=key, project=project).pk
        )
        made.setdefault("usage_controller", []).append(
            make_controller(org=org, project=project)[0].pk
        )
        made.setdefault("spend_reservation", []).append(
            Reservation.objects.create(organization=org, public_id=f"r{key.pk}-{_}", api_key=key,
                                       project=project, model=model, credits=D("1"), tokens=1,
                                       expires_at=NOW + timedelta(minutes=5)).pk
        )  # fmt: skip
        made.setdefault("alerts_alertrule", []).append(
            make_alert_rule(org=org, kind="rate_limits", threshold=_, project=project).pk
        )
    made["spend_budget"] = [
        Budget.objects.create(organization=org, scope="project", project=project,
                              period="month", soft_limit=D("10")).pk
    ]  # fmt: skip
    made["accounts_apikey"] = [key.pk]
    return made


def listed(client, name, **params):
    response = client.get(reverse(f"admin:{name}_changelist"), params)
    assert response.status_code == 200, name
    return response, {row.pk for row in response.context["cl"].result_list}


def test_lists_show_and_filter_by_project_at_a_flat_query_count(client):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    org = make_org(name="Acme")
    research = make_project(org=org, name="Research")
    production = make_project(org=org, name="Production app")
    one = rows_of(research, 1)
    counts = {}
    for name in one:
        listed(client, name)  # the first request of a session reads more (the user, ...)
        with CaptureQueriesContext(connection) as few:
            response, _ = listed(client, name)
        counts[name] = len(few)
        assert "Acme · Research" in response.text, name  # the filter's choice
        assert "Production app" in response.text, name  # offered before it has rows
    many = rows_of(production, 4)
    for name in one:
        with CaptureQueriesContext(connection) as more:
            listed(client, name)
        assert len(more) == counts[name], name  # list_select_related: no query per row
        _, shown = listed(client, name, project=research.pk)
        assert shown == set(one[name]), name
        _, shown = listed(client, name, project=production.pk)
        assert shown == set(many[name]), name
    # Filtered by organization, only its projects are offered.
    other_default = project_default_for(org=make_org(name="Other org"))
    response, _ = listed(client, "usage_query", organization__id__exact=org.pk)
    assert "Other org" not in response.text and other_default.name == "Default"
