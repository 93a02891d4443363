"""Project as a dimension of Explore, its CSVs and GET /api/v1/usage/report, and a member
limited to one project there. Records go through three projects' keys; every expected
figure is added up here from the records as they were made, never by the code under
test."""

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from accounts.models import ProjectRole, Role
from accounts.projects import project_default_for, project_grant_set
from accounts.services import session_token_issue
from rollups.services.days import rollup_day
from tests.factories import (
    make_api_key,
    make_job,
    make_member,
    make_org,
    make_project,
    make_query,
    make_worker_session,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 14, 40, tzinfo=UTC)
DAY = datetime(2026, 11, 10, tzinfo=UTC)
RANGE = {"start": "2026-11-10T00:00", "end": "2026-11-13T00:00"}
API_RANGE = {"start": "2026-11-10", "end": "2026-11-12"}  # `end` a date: that day's end
D = Decimal


@pytest.fixture(params=["raw", "rollups"])
def seeded(request):
    """An organization in UTC with three projects, a key in each, and queries, worker
    sessions and jobs through every key over three days; `credits` per project."""
    with time_machine.travel(NOW, tick=False):
        org = make_org(time_zone="UTC")
        projects = {
            "default": project_default_for(org=org),
            "research": make_project(org=org, name="Research"),
            "prod": make_project(org=org, name="Production app"),
        }
        keys = {
            name: make_api_key(org=org, project=p, name=f"{name} key")[0]
            for name, p in projects.items()
        }
        credits = dict.fromkeys(projects, D("0"))
        names = list(projects)
        for i in range(12):
            name = names[i % 3]
            amount = D(i + 1) / 4  # 0.25, 0.50, ...
            make_query(
                org=org,
                occurred_at=DAY + timedelta(hours=5 * i),
                api_key=keys[name],
                credits=amount,
                member=f"{name}@x.example",
            )
            credits[name] += amount
        for n, name in enumerate(names):
            start = DAY + timedelta(days=1, hours=n)
            make_worker_session(
                org=org,
                started_at=start,
                ended_at=start + timedelta(minutes=30),
                api_key=keys[name],
                credits=D("1.10") * (n + 1),
            )
            make_job(
                org=org,
                submitted_at=DAY + timedelta(days=2, hours=n),
                api_key=keys[name],
                credits=D("0.07") * (n + 1),
            )
            credits[name] += D("1.10") * (n + 1) + D("0.07") * (n + 1)
        if request.param == "rollups":
            for day in range(3):
                rollup_day(org=org, day=date(2026, 11, 10 + day))
        yield {"org": org, "projects": projects, "keys": keys, "credits": credits}


def _rows(html: str) -> dict[str, str]:
    """Explore's table: {group label: its total}."""
    rows = {}
    for row in re.findall(r'<tr data-testid="explore-row">(.*?)</tr>', html, re.S):
        label = re.search(r"<th[^>]*>(.*?)</th>", row, re.S).group(1).strip()
        rows[label] = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[0].strip()
    return rows


def _money(amount: Decimal) -> str:
    return f"{amount:,.2f}"


def _explore(client, org, **params):
    return client.get(f"/o/{org.slug}/usage/explore/", {**RANGE, **params})


def _groups_csv(client, org, **params) -> dict[str, Decimal]:
    response = client.get(f"/o/{org.slug}/usage/explore-groups.csv", {**RANGE, **params})
    assert response.status_code == 200, response.content
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    return {row["group"]: D(row["value"]) for row in rows}


def _report(client, secret, **params):
    return client.get(
        "/api/v1/usage/report",
        {**API_RANGE, **params},
        headers={"Authorization": f"Bearer {secret}"},
    )


def _names(seeded) -> dict[str, str]:
    return {name: p.name for name, p in seeded["projects"].items()}


def test_explore_its_csv_and_the_report_by_project_equal_the_records(client, seeded):
    org, projects, credits = seeded["org"], seeded["projects"], seeded["credits"]
    names = _names(seeded)
    owner = make_member(org=org, role=Role.OWNER)
    client.force_login(owner.user)
    whole = sum(credits.values(), D("0"))

    html = _explore(client, org, group_by="project").content.decode()
    assert _rows(html) == {names[n]: _money(credits[n]) for n in projects}
    assert f'data-testid="explore-total">{_money(whole)}<' in html
    assert _groups_csv(client, org, group_by="project") == {names[n]: credits[n] for n in projects}

    secret = session_token_issue(user=owner.user, org=org).secret
    body = _report(client, secret, group_by="project").json()
    got = {
        (g["group"]["project"], g["group"]["project_name"]): D(g["value"]) for g in body["groups"]
    }
    assert got == {(p.pk, p.name): credits[n] for n, p in projects.items()}
    # No project filter: the organization's figure.
    assert D(_report(client, secret).json()["total"]) == whole
    for name, project in projects.items():
        one = _report(client, secret, **{"filter[project]": project.pk}).json()
        assert D(one["total"]) == credits[name], name
        assert _groups_csv(client, org, group_by="", project=project.pk) == {
            "All usage": credits[name]
        }
        page = _explore(client, org, group_by="", project=project.pk).content.decode()
        assert f'data-testid="explore-total">{_money(credits[name])}<' in page


def test_a_limited_member_sees_only_their_project_everywhere(client, seeded):
    org, projects, keys, credits = (seeded[k] for k in ("org", "projects", "keys", "credits"))
    research, prod = projects["research"], projects["prod"]
    person = make_member(org=org, role=Role.MEMBER)
    project_grant_set(project=research, membership=person, role=ProjectRole.MEMBER)
    client.force_login(person.user)

    response = _explore(client, org, group_by="project")
    html = response.content.decode()
    assert _rows(html) == {"Research": _money(credits["research"])}
    assert f'data-testid="explore-total">{_money(credits["research"])}<' in html
    # Their key and project are offered; nobody else's keys, projects or members.
    assert f'name="api_key" value="{keys["research"].pk}"' in html
    for other in ("default", "prod"):
        assert f'name="api_key" value="{keys[other].pk}"' not in html
        assert f'name="project" value="{projects[other].pk}"' not in html
        assert f"{other}@x.example" not in html
    assert f'name="project" value="{research.pk}"' in html
    by_member = _explore(client, org, group_by="member").content.decode()
    assert set(_rows(by_member)) == {"research@x.example", "(no member)"}
    assert _groups_csv(client, org, group_by="api_key") == {
        f"{keys['research'].name} ({keys['research'].display})": credits["research"]
    }
    # Naming another project, or its key, is refused on that filter.
    refused = _explore(client, org, project=prod.pk)
    assert refused.status_code == 400 and 'data-testid="error-project"' in refused.content.decode()
    assert _explore(client, org, api_key=keys["prod"].pk).status_code == 400

    secret = session_token_issue(user=person.user, org=org).secret
    body = _report(client, secret, group_by="project").json()
    assert [(g["group"]["project"], D(g["value"])) for g in body["groups"]] == [
        (research.pk, credits["research"])
    ]
    assert D(body["total"]) == credits["research"]
    for field, value in (("filter[project]", prod.pk), ("filter[api_key]", keys["prod"].pk)):
        response = _report(client, secret, **{field: value})
        assert response.status_code == 400 and response.json()["field"] == field


def test_an_api_key_reads_its_own_projects_usage(client, seeded):
    projects, credits = seeded["projects"], seeded["credits"]
    _key, secret = make_api_key(org=seeded["org"], project=projects["prod"], name="Reader")
    body = _report(client, secret, group_by="project").json()
    assert [g["group"]["project"] for g in body["groups"]] == [projects["prod"].pk]
    assert D(body["total"]) == credits["prod"]
    response = _report(client, secret, **{"filter[project]": projects["research"].pk})
    assert response.status_code == 400 and response.json()["field"] == "filter[project]"


def test_the_read_api_gives_a_limited_member_their_projects_figures(client, seeded):
    org, research = seeded["org"], seeded["projects"]["research"]
    person = make_member(org=org, role=Role.VIEWER)
    project_grant_set(project=research, membership=person, role=ProjectRole.VIEWER)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {session_token_issue(user=person.user, org=org).secret}"}
    # Research's records, by hand: queries 2, 5, 8, 11 (of 0..11; 10 + 20 tokens each,
    # credits (i + 1) / 4) and one 30-minute worker session.
    queries = [i for i in range(12) if i % 3 == 1]
    query_credits = sum((D(i + 1) / 4 for i in queries), D("0"))
    with time_machine.travel(NOW, tick=False):
        summary = client.get(
            f"/api/v1/usage/llm/organization/{org.pk}/summary",
            {"start_date": "2026-11-10", "end_date": "2026-11-12"},
            **auth,
        ).json()
        assert (summary["queries"], summary["total_tokens"]) == (4, 120)
        assert D(summary["credits"]) == query_credits
        llm = client.get("/api/v1/usage/llm", {"start_date": "2026-11-01"}, **auth).json()
        assert {row["member"] for row in llm["items"]} == {"research@x.example"}
        assert len(llm["items"]) == 4
        month = client.get("/api/v1/usage", **auth).json()
        assert month["total_tokens"] == 120 and month["allocation"] is None
        millis = {"start_date": 1_794_268_800_000, "end_date": 1_794_614_400_000}  # Nov 10-14
        workers = client.get("/api/v1/account/worker-sessions", millis, **auth).json()
        assert workers["total_runtime_seconds"] == 1800
        assert [(m["runtime_seconds"], m["sessions"]) for m in workers["models"]] == [(1800, 1)]
        per_model = client.get("/api/v1/account/queries-per-model", millis, **auth).json()
        assert (per_model["total_queries"], D(per_model["total_credits"])) == (4, query_credits)
