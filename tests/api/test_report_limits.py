"""GET /api/v1/usage/report and Explore bound their work: at most MAX_GROUPS groups (the
rest summed as "Other"), pages of at most 500 buckets, a time limit per report, and text
the database cannot hold refused as a 400 naming its parameter."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection

from accounts.projects import project_default_for
from rollups.services.aggregates import aggregates_records_add
from tests.factories import make_api_key, make_member, make_org, make_query, make_user

pytestmark = pytest.mark.django_db

URL = "/api/v1/usage/report"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DAY = datetime(2026, 11, 10, 0, 0, tzinfo=UTC)
RANGE = {"start": "2026-11-10", "end": "2026-11-11", "time_zone": "UTC"}

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's statement timeout and bulk insert"
)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def org(clock):
    return make_org(time_zone="UTC")


@pytest.fixture
def auth(org):
    _key, secret = make_api_key(org=org, name="Reader")
    return {"Authorization": f"Bearer {secret}"}


def _sixty_endpoints(org):
    # Endpoint e01 costs 0.01, e02 0.02, … e60 0.60: the ten smallest add up to 0.55.
    for n in range(1, 61):
        make_query(
            org=org,
            occurred_at=DAY + timedelta(hours=3),
            endpoint=f"e{n:02d}",
            credits=Decimal(n) / 100,
        )


def test_page_size_is_at_most_500_as_documented(client, org, auth):
    assert client.get(URL, {**RANGE, "page_size": 500}, headers=auth).status_code == 200
    response = client.get(URL, {**RANGE, "page_size": 501}, headers=auth)
    assert response.status_code == 400
    assert "page_size" in response.content.decode()


def test_groups_past_fifty_are_summed_as_other(client, org, auth):
    _sixty_endpoints(org)
    response = client.get(URL, {**RANGE, "group_by": "endpoint", "bucket": "1h"}, headers=auth)
    assert response.status_code == 200, response.content
    body = response.json()
    groups = body["groups"]
    assert len(groups) == 51
    assert [g["group"]["endpoint"] for g in groups[:3]] == ["e60", "e59", "e58"]
    assert groups[49]["group"]["endpoint"] == "e11"
    other = groups[50]
    assert other["other"] is True and other["label"] == "Other (10 groups)"
    assert other["value"] == "0.55"
    assert body["total"] == "18.3"  # 0.01 + … + 0.60, nothing lost
    # The hour with the usage: 51 values, the last being "Other".
    hour = next(b for b in body["buckets"] if b["start"].startswith("2026-11-10T03:00"))
    assert len(hour["values"]) == 51 and hour["values"][-1]["value"] == "0.55"


def test_explore_and_its_csv_cap_the_groups_too(client, org):
    _sixty_endpoints(org)
    user = make_user()
    make_member(org=org, user=user, role="member")
    client.force_login(user)
    params = {"start": "2026-11-10T00:00", "end": "2026-11-11T00:00", "group_by": "endpoint"}
    page = client.get(f"/o/{org.slug}/usage/explore/", params).content.decode()
    assert page.count('data-testid="explore-row"') == 51
    assert "Other (10 groups)" in page
    response = client.get(f"/o/{org.slug}/usage/explore.csv", params)
    csv_text = b"".join(response.streaming_content).decode()
    groups = {line.split(",")[1] for line in csv_text.splitlines()[1:] if line}
    assert len(groups) == 51 and "Other (10 groups)" in groups


@pytest.mark.parametrize("name", ["filter[member]", "filter[endpoint]", "filter[model]"])
def test_a_nul_in_a_text_filter_is_a_400_naming_it(client, org, auth, name):
    response = client.get(URL, {**RANGE, name: "a\x00b"}, headers=auth)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == name


def test_a_report_over_its_time_limit_is_an_error_naming_the_limit(client, org, auth, settings):
    make_query(org=org, occurred_at=DAY + timedelta(hours=3), credits="1")
    settings.USAGE_REPORT_TIME_LIMIT = 1e-9
    response = client.get(URL, {**RANGE, "group_by": "endpoint"}, headers=auth)
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["error"] == "report_too_costly"
    assert "1e-09 seconds" in body["message"] or "limit" in body["message"]


@on_postgresql
def test_the_time_limit_cancels_a_slow_statement_on_postgresql():
    from insights.selectors.explorer import ReportTooCostly, report_time_limit

    with (
        pytest.raises(ReportTooCostly),
        report_time_limit(seconds=0.2),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT pg_sleep(3)")
    # The connection is usable afterwards, without the limit.
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"


@on_postgresql
def test_ten_thousand_endpoints_hourly_over_a_week_answer_fifty_groups(client, org, auth):
    week = DAY - timedelta(days=6)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO usage_query (organization_id, project_id, client_id, model_id,
                occurred_at, input_tokens, output_tokens, total_tokens, endpoint, member,
                credits, created_at)
            SELECT %s, %s, 'bulk-' || n, (SELECT id FROM billing_pricemodel
                                      WHERE name = 'llama-3.1-8b'),
                   %s::timestamptz + (n %% 168) * interval '1 hour', 1, 1, 2,
                   'endpoint-' || n, '', 0.002 + (n = 1)::int * 5, now()
            FROM generate_series(1, 10000) AS n
            RETURNING id
            """,
            [org.pk, project_default_for(org=org).pk, week],
        )
        ids = [row[0] for row in cursor.fetchall()]
    # As ingestion does: the pages read the per-minute aggregates of recent usage.
    aggregates_records_add(org=org, kind="query", ids=ids)
    params = {
        "start": "2026-11-04",
        "end": "2026-11-11",
        "time_zone": "UTC",
        "group_by": "endpoint",
        "bucket": "1h",
    }
    response = client.get(URL, params, headers=auth)
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    assert len(body["groups"]) == 51
    assert body["groups"][0]["group"]["endpoint"] == "endpoint-1"
    assert body["groups"][0]["value"] == "5.002"
    # 10,000 × 0.002 + 5 in all; the 9,950 smallest endpoints are "Other".
    assert body["total"] == "25"
    assert body["groups"][-1]["label"] == "Other (9950 groups)"
    assert body["groups"][-1]["value"] == "19.9"
    assert all(len(b["values"]) == 51 for b in body["buckets"])


def test_groups_of_the_organizations_own_keys_past_fifty_are_other_too(client, org, auth):
    # 52 keys, key n spending n credits: the two smallest (1 + 2) are "Other".
    for n in range(1, 53):
        key, _secret = make_api_key(org=org, name=f"key {n:02d}")
        make_query(org=org, occurred_at=DAY + timedelta(hours=1), api_key=key, credits=str(n))
    response = client.get(URL, {**RANGE, "group_by": "api_key"}, headers=auth)
    assert response.status_code == 200, response.content
    groups = response.json()["groups"]
    assert len(groups) == 51
    assert groups[0]["label"].startswith("key 52")
    assert groups[-1]["label"] == "Other (2 groups)" and groups[-1]["value"] == "3"
    assert response.json()["total"] == str(52 * 53 // 2)
