"""The project switcher on the main page, the usage panel and Finance (docs/projects.md):
every figure with one project chosen equals the sum of that project's records, All
projects equals the sum over the projects and the organization's own figure, and a
member limited to projects sees theirs only (another project answers 404)."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.db.models import Count, Sum

from accounts.models import ProjectRole, Role
from accounts.projects import project_grant_set
from tests.factories import make_member, make_org
from tests.insights.project_seed import NOW, PROJECTS, records_sum, seed
from usage.models import Job, Query, WorkerSession

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]

WINDOW_START = NOW - timedelta(days=30)  # the panel's default window
PERIODS = (  # the main page's: last 24 hours, last calendar month, last calendar year
    (NOW - timedelta(hours=24), NOW),
    (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)),
    (datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
)
FINANCE_START = datetime(2025, 12, 1, tzinfo=UTC)  # the 12 months Finance charts
JOBS_LABEL = "Jobs (core-hours)"


@pytest.fixture
def world(client):
    world = seed()
    client.force_login(world["owner"].user)
    return world


def _get(client, path: str, project=None, **headers):
    query = "" if project is None else f"?project={project.pk}"
    response = client.get(f"{path}{query}", headers=headers)
    assert response.status_code == 200, (path, project)
    return response


def _grouped(model, field: str, time: str, *, org, projects, start, end, total: str) -> dict:
    rows = model.objects.filter(organization=org, **{f"{time}__gte": start, f"{time}__lt": end})
    if projects is not None:
        rows = rows.filter(project__in=projects)
    return dict(rows.values_list(field).annotate(t=Sum(total)).values_list(field, "t"))


def _panel_expected(org, projects) -> dict:
    window = {"submitted_at__gte": WINDOW_START, "submitted_at__lt": NOW}
    jobs = records_sum(Job, org=org, projects=projects, **window)
    queries = {"occurred_at__gte": WINDOW_START, "occurred_at__lt": NOW}
    per = {"org": org, "projects": projects, "start": WINDOW_START, "end": NOW}
    month_start = datetime(2026, 11, 1, tzinfo=UTC)
    return {
        "jobs": jobs,
        "keys": dict(
            Job.objects.filter(organization=org, **window)
            .filter(**({} if projects is None else {"project__in": projects}))
            .values_list("api_key__name")
            .annotate(n=Count("id"))
        ),
        "controllers": dict(
            Job.objects.filter(organization=org, controller__isnull=False, **window)
            .filter(**({} if projects is None else {"project__in": projects}))
            .values_list("controller__name")
            .annotate(n=Count("id"))
        ),
        "models": _grouped(Query, "model__name", "occurred_at", **per, total="total_tokens"),
        "model_credits": _grouped(Query, "model__name", "occurred_at", **per, total="credits"),
        "endpoints": _grouped(Query, "endpoint", "occurred_at", **per, total="total_tokens"),
        "members": _grouped(Query, "member", "occurred_at", **per, total="total_tokens"),
        "tokens": records_sum(Query, org=org, projects=projects, **queries)["tokens"],
        "month_tokens": records_sum(
            Query, org=org, projects=projects, occurred_at__gte=month_start
        )["tokens"],
    }


def _panel_shown(response) -> dict:
    c = response.context
    overview = c["overview"]
    return {
        "jobs": {
            "submitted": overview.submitted,
            "failed": overview.failed,
            "managed": overview.core_hours_managed,
            "byoc": overview.core_hours_byoc,
            "on_controllers": overview.on_controllers,
            "wasted": overview.wasted_credits,
        },
        "keys": {card.name: card.jobs for card in c["key_cards"]},
        "controllers": {ctl.name: ctl.handled for ctl in c["controllers"] if ctl.handled},
        "models": {m.model: m.total_tokens for m in c["models"]},
        "model_credits": {m.model: m.credits for m in c["models"]},
        "endpoints": {e.name: e.total_tokens for e in c["endpoints"]},
        "members": {m.name: m.total_tokens for m in c["members"]},
        "tokens": sum(sum(v) for v in c["token_trend"].tokens.values()),
        "month_tokens": c["allocation"].used,
        "timeline": sum(day.submitted for day in c["timeline"]),
    }


def _main_expected(org, projects) -> list[tuple]:
    cells = []
    for lo, hi in PERIODS:
        q = records_sum(Query, org=org, projects=projects, occurred_at__gte=lo, occurred_at__lt=hi)
        w = records_sum(
            WorkerSession, org=org, projects=projects, started_at__gte=lo, ended_at__lte=hi
        )
        cells.append((q["queries"], q["tokens"], q["credits"], w["sessions"]))
    return cells


def _main_shown(response) -> list[tuple]:
    s = response.context["usage_summaries"]
    return [
        (q.queries, q.total_tokens, q.credits, w.sessions)
        for q, w in zip(s.queries_total.cells, s.runtime_total.cells, strict=True)
    ]


def _finance_expected(org, projects) -> tuple[dict, dict]:
    by_model: dict[str, D] = defaultdict(D)
    by_month: dict = defaultdict(D)
    kinds = ((Query, "occurred_at"), (WorkerSession, "started_at"), (Job, "submitted_at"))
    for model, time in kinds:
        rows = model.objects.filter(organization=org, **{f"{time}__gte": FINANCE_START})
        if projects is not None:
            rows = rows.filter(project__in=projects)
        for at, name, credits in rows.values_list(
            time, "submitted_at" if model is Job else "model__name", "credits"
        ):
            by_model[JOBS_LABEL if model is Job else name] += credits
            by_month[at.date().replace(day=1)] += credits
    return dict(by_model), dict(by_month)


def _finance_shown(response) -> tuple[dict, dict]:
    c = response.context
    return (
        {m.model_name: m.credits for m in c["model_debits"]},
        {m.month: m.credits for m in c["month_debits"] if m.credits},
    )


def _add(dicts: list[dict]) -> dict:
    total: dict = defaultdict(int)
    for d in dicts:
        for k, v in d.items():
            total[k] += v
    return dict(total)


def test_every_figure_per_project_is_its_records_sum_and_all_is_their_sum(client, world):
    org = world["org"]
    slug = org.slug
    projects = [world["projects"][name]["project"] for name in PROJECTS]
    panels, mains, finances = [], [], []
    for project in projects:
        panel = _panel_shown(_get(client, f"/o/{slug}/usage/", project))
        expected = _panel_expected(org, [project])
        timeline = panel.pop("timeline")
        assert panel == expected, project.name
        assert timeline == expected["jobs"]["submitted"]  # every window job is in 14 days
        panels.append(panel)
        main = _main_shown(_get(client, f"/o/{slug}/", project))
        assert main == _main_expected(org, [project]), project.name
        mains.append(main)
        finance = _finance_shown(_get(client, f"/o/{slug}/finance/", project))
        assert finance == _finance_expected(org, [project]), project.name
        finances.append(finance)
    # The projects differ (a test that cannot tell them apart proves nothing).
    assert len({p["jobs"]["submitted"] for p in panels}) == 3

    everything = _panel_shown(_get(client, f"/o/{slug}/usage/"))
    everything.pop("timeline")
    assert everything == _panel_expected(org, None)
    for name in ("keys", "controllers", "models", "model_credits", "endpoints", "members"):
        assert everything[name] == _add([p[name] for p in panels]), name
    for name in ("submitted", "failed", "managed", "byoc", "wasted"):
        assert everything["jobs"][name] == sum(p["jobs"][name] for p in panels), name

    main_all = _main_shown(_get(client, f"/o/{slug}/"))
    assert main_all == _main_expected(org, None)
    per_period = zip(*mains, strict=True)  # each period's cells, one per project
    assert main_all == [tuple(map(sum, zip(*cells, strict=True))) for cells in per_period]

    models_all, months_all = _finance_shown(_get(client, f"/o/{slug}/finance/"))
    assert models_all == _add([f[0] for f in finances]) == _finance_expected(org, None)[0]
    # All projects' months are the ledger's debits (charged when the usage happened here).
    assert months_all == _add([f[1] for f in finances])


def test_org_wide_figures_are_labelled_when_a_project_is_chosen(client, world):
    org = world["org"]
    research = world["projects"]["Research"]["project"]
    for path in (f"/o/{org.slug}/", f"/o/{org.slug}/finance/"):
        assert 'data-testid="org-wide-note"' not in _get(client, path).content.decode()
        chosen = _get(client, path, research).content.decode()
        assert 'data-testid="org-wide-note"' in chosen and "for all projects" in chosen
        balance = _get(client, path).context["overview"].credit_balance
        assert _get(client, path, research).context["overview"].credit_balance == balance
    # The monthly allocation is the organization's: a project's tokens are its share, and
    # what remains is not the project's to tell.
    assert org.monthly_token_allocation
    panel = _get(client, f"/o/{org.slug}/usage/").content.decode()
    assert "tokens remain this month" in panel and "share of the organization" not in panel
    chosen = _get(client, f"/o/{org.slug}/usage/", research).content.decode()
    assert "tokens remain this month" not in chosen
    assert "by Research: its share of the organization's allocation" in chosen


PAGES = ("", "usage/", "usage/timeline.csv", "finance/")
PARTIALS = (("", "main-usage"), ("usage/", "usage-window"), ("usage/", "controller-load"),
            ("finance/", "finance-spend"))  # fmt: skip


def test_a_limited_member_sees_their_projects_only(client, world):
    org = world["org"]
    research = world["projects"]["Research"]
    person = make_member(org=org, role=Role.MEMBER)
    project_grant_set(project=research["project"], membership=person, role=ProjectRole.VIEWER)
    stranger = make_org()
    client.force_login(person.user)
    others = [world["projects"][name] for name in PROJECTS if name != "Research"]
    foreign = [*(o["project"] for o in others), stranger.projects.get()]
    for page in PAGES:
        for project in foreign:
            assert client.get(f"/o/{org.slug}/{page}?project={project.pk}").status_code == 404
        for junk in ("abc", "-1", "0", "1e3", "99999999999999999999"):
            assert client.get(f"/o/{org.slug}/{page}?project={junk}").status_code == 404
    for page, target in PARTIALS:
        headers = {"HX-Request": "true", "HX-Target": target}
        for project in foreign:
            url = f"/o/{org.slug}/{page}?project={project.pk}"
            assert client.get(url, headers=headers).status_code == 404, (page, target)

    # "All projects" is all of theirs: the same figures as Research chosen, nothing else.
    mine = [research["project"]]
    for project in (None, research["project"]):
        panel = _get(client, f"/o/{org.slug}/usage/", project)
        shown = _panel_shown(panel)
        shown.pop("timeline")
        assert shown == _panel_expected(org, mine)
        assert _main_shown(_get(client, f"/o/{org.slug}/", project)) == _main_expected(org, mine)
        finance = _get(client, f"/o/{org.slug}/finance/", project)
        assert _finance_shown(finance) == _finance_expected(org, mine)
        html = panel.content.decode() + finance.content.decode()
        html += _get(client, f"/o/{org.slug}/", project).content.decode()
        for other in others:
            assert other["key"].name not in html and other["ctl"].name not in html
            assert f">{other['project'].name}<" not in html  # not even in the switcher
        assert "/v1/chat-2" in html and "/v1/chat-1" not in html and "/v1/chat-3" not in html
    csv = b"".join(_get(client, f"/o/{org.slug}/usage/timeline.csv").streaming_content)
    submitted = sum(int(line.split(",")[1]) for line in csv.decode().splitlines()[1:])
    assert (
        submitted
        == records_sum(Job, org=org, projects=mine, submitted_at__gte=NOW - timedelta(days=14))[
            "submitted"
        ]
    )


def test_a_limited_member_without_a_grant_sees_no_usage(client, world):
    org = world["org"]
    person = make_member(org=org, role=Role.VIEWER)
    grant = project_grant_set(
        project=world["projects"]["Research"]["project"], membership=person, role="viewer"
    )
    grant.delete()
    client.force_login(person.user)
    panel = _panel_shown(_get(client, f"/o/{org.slug}/usage/"))
    assert panel["jobs"]["submitted"] == 0 and panel["keys"] == {} and panel["models"] == {}
    assert _main_shown(_get(client, f"/o/{org.slug}/"))[0] == (0, 0, D(0), 0)
    assert _finance_shown(_get(client, f"/o/{org.slug}/finance/")) == ({}, {})
