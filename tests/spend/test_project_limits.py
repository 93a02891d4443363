"""Budgets per project (issue 27): a project's hard budget refuses while the organization's
has room, and the other way round; exactly 10 allowed from 50 threads across two projects
of one organization, on Redis' counters and on the database's path; the counters rebuilt
from PostgreSQL and reconciled with the project's spend; the API and Settings → Budgets
carry the project."""

import shutil
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from billing.models import PriceModel
from ingest.services.ingest import usage_records_ingest
from spend import counters
from spend.models import Budget, Reservation, SpendDay
from spend.selectors.budgets import spend_reconcile_counts
from spend.services.authorize import request_authorize
from tests.factories import grant_credits, make_api_key, make_org, make_project
from tests.spend.conftest import bearer, post
from tests.workers import PrivateRedis, free_port

INPUT, OUTPUT = 1000, 1000  # worst case 2,000 tokens at 0.10 per million: 0.0002
COST = Decimal("0.0002")
THREADS = 50
needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


def _private_redis(settings) -> PrivateRedis:
    redis = PrivateRedis(free_port())
    redis.start()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{redis.port}/0",
        }
    }
    return redis


def _two_projects(*, org_cap: int | None, project_cap: int | None):
    """An organization with projects A (three keys) and B (two keys), a monthly org
    budget and a daily budget on A, each allowing `cap` requests at their worst case."""
    org = make_org(allow_overdraft=False)
    grant_credits(org=org, amount="100")
    a, b = make_project(org=org, name="A"), make_project(org=org, name="B")
    keys_a = [make_api_key(org=org, project=a, name=f"a{i}")[0] for i in range(3)]
    keys_b = [make_api_key(org=org, project=b, name=f"b{i}")[0] for i in range(2)]
    if org_cap is not None:
        Budget.objects.create(
            organization=org, scope="organization", period="month",
            soft_limit=org_cap * COST, hard_limit=org_cap * COST,
        )  # fmt: skip
    if project_cap is not None:
        Budget.objects.create(
            organization=org, scope="project", project=a, period="day",
            soft_limit=project_cap * COST, hard_limit=project_cap * COST,
        )  # fmt: skip
    return org, a, b, keys_a, keys_b


def _authorize_many(keys: list, n: int) -> list:
    """n threads at once, thread i on keys[i % len(keys)]."""
    model = PriceModel.objects.get(name="llama-3.1-8b")
    verdicts: list = [None] * n
    errors: list = []
    barrier = threading.Barrier(n)

    def work(i: int) -> None:
        try:
            barrier.wait()
            verdicts[i] = request_authorize(
                key=keys[i % len(keys)], model=model, input_tokens=INPUT, max_output_tokens=OUTPUT
            )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return verdicts


def _by_project(verdicts: list, keys: list) -> dict[int, list]:
    out: dict[int, list] = {}
    for i, verdict in enumerate(verdicts):
        out.setdefault(keys[i % len(keys)].project_id, []).append(verdict)
    return out


def _project_cap_binds(org, a, b, keys_a, keys_b) -> None:
    # 30 threads on A's three keys, 20 on B's two, interleaved.
    keys = [*keys_a, *keys_b]
    verdicts = _authorize_many(keys, THREADS)
    split = _by_project(verdicts, keys)
    assert sum(v.allowed for v in split[a.pk]) == 10
    assert all(v.allowed for v in split[b.pk])  # the organization has room: B is not A
    refused = [v for v in split[a.pk] if not v.allowed]
    assert {(v.status, v.reason, v.extra["scope"]) for v in refused} == {
        (402, "budget_exceeded", "project")
    }
    held = Reservation.objects.filter(organization=org, status="held")
    assert held.filter(project=a).count() == 10
    assert held.filter(project=b).count() == len(split[b.pk])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@needs_redis
def test_on_the_counters_a_projects_cap_allows_exactly_ten_while_the_org_has_room(settings):
    redis = _private_redis(settings)
    try:
        _project_cap_binds(*_two_projects(org_cap=1000, project_cap=10))
    finally:
        redis.kill()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_the_database_path_a_projects_cap_allows_exactly_ten(settings):
    settings.SPEND_COUNTERS = False
    _project_cap_binds(*_two_projects(org_cap=1000, project_cap=10))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@needs_redis
def test_on_the_counters_the_orgs_cap_allows_exactly_ten_while_the_project_has_room(settings):
    redis = _private_redis(settings)
    try:
        org, a, b, keys_a, keys_b = _two_projects(org_cap=10, project_cap=1000)
        verdicts = _authorize_many([*keys_a, *keys_b], THREADS)
        assert sum(v.allowed for v in verdicts) == 10
        refused = [v for v in verdicts if not v.allowed]
        assert {(v.reason, v.extra["scope"]) for v in refused} == {
            ("budget_exceeded", "organization")
        }
    finally:
        redis.kill()


def _settle(org, key, verdict, n: int) -> None:
    record = {
        "id": f"q-{n}", "kind": "query", "occurred_at": timezone.now().isoformat(),
        "model": "llama-3.1-8b", "input_tokens": INPUT, "output_tokens": OUTPUT,
        "reservation": verdict.reservation.public_id,
    }  # fmt: skip
    assert usage_records_ingest(org=org, records=[record], api_key=key).accepted == [f"q-{n}"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@needs_redis
# Mid-day: the expiry step moves the clock 11 minutes on, which must stay in the same
# budget day.
@time_machine.travel(datetime(2026, 12, 7, 12, 0, tzinfo=UTC), tick=True)
def test_a_flushed_redis_is_rebuilt_with_the_projects_spend_and_holds(settings):
    redis = _private_redis(settings)
    try:
        org, a, _b, keys_a, keys_b = _two_projects(org_cap=None, project_cap=10)
        model = PriceModel.objects.get(name="llama-3.1-8b")
        first = [
            request_authorize(
                key=keys_a[i % 3], model=model, input_tokens=INPUT, max_output_tokens=OUTPUT
            )
            for i in range(6)
        ]
        assert all(v.allowed for v in first)
        for n, verdict in enumerate(first[:2]):  # two settled, four still held
            _settle(org, keys_a[n % 3], verdict, n)
        today = SpendDay.objects.get(organization=org, dimension="p", subject=str(a.pk))
        assert today.credits == 2 * COST
        assert spend_reconcile_counts(org=org, days=1)["spend_hold_mismatches"] == 0
        counters.client().flushall()
        after = _authorize_many([*keys_a, *keys_b], THREADS)
        split = _by_project(after, [*keys_a, *keys_b])
        assert sum(v.allowed for v in split[a.pk]) == 4  # 2 settled + 4 held of 10
        assert spend_reconcile_counts(org=org, days=1)["spend_hold_mismatches"] == 0
        # A project hold that drifted is reported, and dropping the counters repairs it.
        state = f"{counters.org_tag(org.pk)}:s"
        counters.client().hset(state, f"h:p:{a.pk}", "0|0")
        assert spend_reconcile_counts(org=org, days=1)["spend_hold_mismatches"] == 1
        # Past expiry the project's holds are free again: 10 - 2 settled = 8 more.
        later = timezone.now() + timedelta(minutes=11)
        from spend.services.counter_keys import counters_drop

        counters_drop(org_id=org.pk)
        again = [
            request_authorize(
                key=keys_a[0], model=model, input_tokens=INPUT, max_output_tokens=OUTPUT,
                now=later,
            ).allowed
            for _ in range(9)
        ]  # fmt: skip
        assert sum(again) == 8
    finally:
        redis.kill()


# --- The API and Settings → Budgets ---------------------------------------------------------


@pytest.mark.django_db
def test_the_api_sets_and_lists_a_projects_budget_and_authorize_refuses_past_it(client, spend):
    research = make_project(org=spend.org, name="Research")
    key, secret = make_api_key(org=spend.org, project=research, name="r")
    created = post(
        client, "/api/v1/budgets",
        {"scope": "project", "project": research.pk, "period": "day", "soft_limit": "0.0002",
         "hard_limit": "0.0004"},
        spend.owner_token,
    )  # fmt: skip
    assert created.status_code == 201, created.content
    assert (created.json()["scope"], created.json()["project"]) == ("project", research.pk)
    listed = client.get("/api/v1/budgets", headers=bearer(spend.owner_token)).json()
    assert [(b["scope"], b["project"], b["api_key"]) for b in listed["budgets"]] == [
        ("project", research.pk, None)
    ]
    body = {"model": "llama-3.1-8b", "input_tokens": 1000, "max_output_tokens": 1000}
    answers = [post(client, "/api/v1/usage/authorize", body, secret) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 402]
    assert answers[2].json()["scope"] == "project"
    # The Default project's key is not in Research's budget.
    assert post(client, "/api/v1/usage/authorize", body, spend.key_secret).status_code == 200
    card = client.get(f"/api/v1/budgets/{created.json()['id']}", headers=bearer(spend.owner_token))
    assert (card.json()["reserved"], card.json()["left"]) == ("0.0004", "0")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scope": "project"}, "project"),
        ({"scope": "organization", "project": "own"}, "project"),
        ({"scope": "project", "project": "other"}, "project"),
    ],
)
def test_a_projects_budget_with_a_bad_project_is_a_400_naming_it(client, spend, body, field):
    own = make_project(org=spend.org, name="Own")
    other = make_project(org=make_org(), name="Other")
    ids = {"own": own.pk, "other": other.pk}
    if "project" in body:
        body = {**body, "project": ids[body["project"]]}
    answer = post(
        client, "/api/v1/budgets", {**body, "period": "day", "soft_limit": "1"}, spend.owner_token
    )
    assert answer.status_code == 400
    assert answer.json()["field"] == field
    assert not Budget.objects.filter(organization=spend.org).exists()


@pytest.mark.django_db
def test_the_budgets_page_offers_the_projects_and_sets_a_projects_budget(client, spend):
    research = make_project(org=spend.org, name="Research")
    make_project(org=make_org(), name="Elsewhere")
    client.force_login(spend.owner)
    url = f"/o/{spend.org.slug}/usage/budgets/"
    page = client.get(url).content.decode()
    assert "Research" in page and "Elsewhere" not in page
    response = client.post(
        url + "create",
        {"scope": "project", "project": research.pk, "period": "week", "soft_limit": "1",
         "hard_limit": "2"},
    )  # fmt: skip
    assert response.status_code == 302, response.content
    budget = Budget.objects.get(organization=spend.org)
    assert (budget.scope, budget.project, budget.period) == ("project", research, "week")
    assert "Project: Research" in client.get(url).content.decode()


# --- Rate limits per project ----------------------------------------------------------------


def _limited_project(org, *, rpm=None, tpm=None):
    from accounts.projects import project_rate_limits_set

    project = make_project(org=org, name="Limited")
    project_rate_limits_set(project=project, rpm=rpm, tpm=tpm)
    keys = [make_api_key(org=org, project=project, name=f"l{i}") for i in range(2)]
    return project, keys


@pytest.mark.django_db
@pytest.mark.parametrize("counters_on", [True, False])
def test_a_projects_rpm_over_all_its_keys_refuses_the_next_request(
    client, spend, settings, counters_on
):
    settings.SPEND_COUNTERS = counters_on
    _project, keys = _limited_project(spend.org, rpm=3)
    body = {"model": "llama-3.1-8b", "input_tokens": 10, "max_output_tokens": 10}
    answers = [post(client, "/api/v1/usage/authorize", body, keys[i % 2][1]) for i in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[3].json()
    assert (refused["reason"], refused["limit"], refused["scope"]) == (
        "rate_limit_requests",
        3,
        "project",
    )
    assert answers[3].headers["X-RateLimit-Limit-RPM"] == "3"
    # A key of another project of the organization is not counted in this one's minute.
    assert post(client, "/api/v1/usage/authorize", body, spend.key_secret).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("counters_on", [True, False])
def test_a_projects_tpm_refuses_and_the_keys_own_tighter_limit_refuses_first(
    client, spend, settings, counters_on
):
    settings.SPEND_COUNTERS = counters_on
    _project, keys = _limited_project(spend.org, tpm=100)
    body = {"model": "llama-3.1-8b", "input_tokens": 30, "max_output_tokens": 10}  # 40 tokens
    first = [post(client, "/api/v1/usage/authorize", body, keys[i][1]) for i in (0, 1)]
    assert [a.status_code for a in first] == [200, 200]
    assert first[1].headers["X-RateLimit-Remaining-TPM"] == "20"  # the project's, tighter
    refused = post(client, "/api/v1/usage/authorize", body, keys[0][1])
    assert refused.status_code == 429
    assert (refused.json()["reason"], refused.json()["limit"]) == ("rate_limit_tokens", 100)
    assert refused.json()["scope"] == "project"
    # A key whose own limit is tighter than its project's is refused by its own.
    key, secret = make_api_key(org=spend.org, project=_project, name="tight")
    key.rate_limit_rpm = 1
    key.save(update_fields=["rate_limit_rpm"])
    small = {"model": "llama-3.1-8b", "input_tokens": 1, "max_output_tokens": 1}
    assert post(client, "/api/v1/usage/authorize", small, secret).status_code == 200
    own = post(client, "/api/v1/usage/authorize", small, secret)
    assert own.status_code == 429
    assert (own.json()["limit"], own.json()["scope"]) == (1, None)


@pytest.mark.django_db
def test_an_archived_projects_key_hears_project_archived_from_authorize(client, spend):
    from accounts.projects import project_archive

    project = make_project(org=spend.org, name="Old")
    _key, secret = make_api_key(org=spend.org, project=project)
    project_archive(project=project)
    body = {"model": "llama-3.1-8b", "input_tokens": 10, "max_output_tokens": 10}
    answer = post(client, "/api/v1/usage/authorize", body, secret)
    assert answer.status_code == 403
    assert answer.json() == {"error": "project_archived", "message": "Project Old is archived"}
    assert not Reservation.objects.filter(organization=spend.org).exists()


@pytest.mark.django_db
def test_the_project_page_shows_its_budgets_next_to_the_orgs_and_its_keys(client, spend):
    research = make_project(org=spend.org, name="Research")
    other = make_project(org=spend.org, name="Other")
    key, _secret = make_api_key(org=spend.org, project=research, name="research-key")
    other_key, _ = make_api_key(org=spend.org, project=other, name="other-key")
    for scope, extra in [
        ("organization", {}),
        ("project", {"project": research}),
        ("api_key", {"api_key": key}),
        ("project", {"project": other}),
        ("api_key", {"api_key": other_key}),
    ]:
        Budget.objects.create(
            organization=spend.org, scope=scope, period="month", soft_limit=1, hard_limit=2,
            **extra,
        )  # fmt: skip
    client.force_login(spend.owner)
    url = reverse("accounts:project", args=[spend.org.slug, research.pk])
    page = client.get(url)
    assert page.status_code == 200, page.status_code
    html = page.content.decode()
    section = html[html.index('data-testid="project-budgets"') :]
    section = section[: section.index("</table>")]
    assert section.count("<tr data-scope") == 3
    assert "Project: Research" in section and "API key: research-key" in section
    assert "Other" not in section and "other-key" not in section
    # Owners set the project's rate limits there.
    saved = client.post(
        reverse("accounts:project_rate_limits", args=[spend.org.slug, research.pk]),
        {"rate_limit_rpm": "120", "rate_limit_tpm": ""},
    )
    assert saved.status_code == 302
    research.refresh_from_db()
    assert (research.rate_limit_rpm, research.rate_limit_tpm) == (120, None)
    bad = client.post(
        reverse("accounts:project_rate_limits", args=[spend.org.slug, research.pk]),
        {"rate_limit_rpm": "0"},
    )
    assert bad.status_code == 400
    research.refresh_from_db()
    assert research.rate_limit_rpm == 120


@pytest.mark.django_db
def test_a_member_limited_to_one_project_sees_only_its_budgets(client, spend):
    from accounts.models import Membership
    from accounts.projects import project_grant_set

    mine, theirs = (
        make_project(org=spend.org, name="Mine"),
        make_project(org=spend.org, name="Theirs"),
    )
    my_key, my_secret = make_api_key(org=spend.org, project=mine, name="my-key")
    their_key, _ = make_api_key(org=spend.org, project=theirs, name="their-key")
    made = {}
    for name, scope, extra in [
        ("org", "organization", {}),
        ("mine", "project", {"project": mine}),
        ("theirs", "project", {"project": theirs}),
        ("my-key", "api_key", {"api_key": my_key}),
        ("their-key", "api_key", {"api_key": their_key}),
    ]:
        made[name] = Budget.objects.create(
            organization=spend.org, scope=scope, period="month", soft_limit=1, **extra
        ).pk
    membership = Membership.objects.get(organization=spend.org, user=spend.member)
    project_grant_set(project=mine, membership=membership, role="member")
    seen = {made["org"], made["mine"], made["my-key"]}
    for secret in (spend.member_token, my_secret):  # the limited member, and Mine's key
        listed = client.get("/api/v1/budgets", headers=bearer(secret)).json()["budgets"]
        assert {b["id"] for b in listed} == seen
        other = client.get(f"/api/v1/budgets/{made['theirs']}", headers=bearer(secret))
        assert other.status_code == 404
    owner = client.get("/api/v1/budgets", headers=bearer(spend.owner_token)).json()["budgets"]
    assert {b["id"] for b in owner} == set(made.values())
    client.force_login(spend.member)
    page = client.get(f"/o/{spend.org.slug}/usage/budgets/").content.decode()
    assert "Project: Mine" in page and "my-key" in page
    assert "Theirs" not in page and "their-key" not in page
