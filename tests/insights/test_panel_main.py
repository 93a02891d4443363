"""The main page's Worker Runtime Summary and End-User Query Summary, and the chip."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import PriceModel, WorkerType
from tests.factories import grant_credits, make_member, make_org, make_query, make_worker_session

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]

NOW = datetime(2026, 11, 21, 15, 30, tzinfo=UTC)


@pytest.fixture
def member(client):
    member = make_member(org=make_org(time_zone="America/New_York"))
    client.force_login(member.user)
    return member


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def row_cells(html: str, table: str, model: str) -> list[str]:
    """The text of one row's period cells ("1 h 30 min 2 sessions") in a summary table."""
    body = html.split(f'data-testid="{table}"')[1].split("</table>")[0]
    row = re.search(rf'<tr[^>]*data-model="{re.escape(model)}">(.*?)</tr>', body, re.S).group(1)
    cells = re.findall(r'<td class="num" data-period="\d">(.*?)</td>', row, re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cell)).strip() for cell in cells]


def test_main_page_shows_runtime_and_queries_for_the_three_periods(client, member):
    org = member.organization
    # Daily: the last 24 h from 20 Nov 15:30 UTC; monthly: October in New York
    # (1 Oct 04:00 to 1 Nov 04:00 UTC); yearly: 2025 in New York (05:00 UTC edges).
    make_worker_session(
        org=org, started_at=_utc(2026, 11, 20, 15), ended_at=_utc(2026, 11, 20, 17, 15)
    )  # 1 h 45 min inside the daily window
    make_worker_session(
        org=org,
        model="llama-3.1-70b",
        started_at=_utc(2026, 10, 15, 10),
        ended_at=_utc(2026, 10, 15, 10, 20),
    )
    make_worker_session(
        org=org, started_at=_utc(2025, 12, 31, 23), ended_at=_utc(2026, 1, 1, 7)
    )  # 6 h of it in 2025 New York time
    make_query(org=org, occurred_at=NOW - timedelta(hours=24), input_tokens=1000, output_tokens=234)
    make_query(org=org, occurred_at=_utc(2026, 10, 1, 4), model="llama-3.1-70b", input_tokens=5)
    make_query(org=org, occurred_at=_utc(2026, 10, 1, 3, 59), model="llama-3.1-70b")  # September

    html = client.get(f"/o/{org.slug}/").content.decode()

    assert "Worker Runtime Summary" in html and "End-User Query Summary" in html
    assert re.search(r"Monthly<small>October 2026</small>", html)
    assert re.search(r"Yearly<small>2025</small>", html)
    assert row_cells(html, "runtime-summary", "Total") == [
        "1 h 45 min 1 session",
        "20 min 1 session",
        "6 h 1 session",
    ]
    assert row_cells(html, "runtime-summary", "llama-3.1-8b") == [
        "1 h 45 min 1 session",
        "0 min 0 sessions",
        "6 h 1 session",
    ]
    assert row_cells(html, "runtime-summary", "llama-3.1-70b")[1] == "20 min 1 session"
    assert row_cells(html, "query-summary", "Total") == [
        "1 1,234 tokens",
        "1 25 tokens",
        "0 0 tokens",
    ]
    assert row_cells(html, "query-summary", "llama-3.1-70b") == [
        "0 0 tokens",
        "1 25 tokens",
        "0 0 tokens",
    ]


def test_main_page_summaries_have_empty_states(client, member):
    html = client.get(f"/o/{member.organization.slug}/").content.decode()
    assert 'data-testid="runtime-summary-empty"' in html
    assert 'data-testid="query-summary-empty"' in html


@pytest.mark.parametrize("project", [False, True], ids=["all-projects", "one-project"])
def test_main_page_query_count_does_not_grow_with_models(client, member, project):
    org = member.organization
    url = f"/o/{org.slug}/"
    if project:  # one more query: the project chosen, checked against those they see
        url += f"?project={org.projects.get().pk}"

    def add_models(first: int, count: int) -> None:
        for i in range(first, first + count):
            name = f"extra-{i}"
            PriceModel.objects.create(
                name=name, input_price_per_million=D(1), output_price_per_million=D(1)
            )
            make_worker_session(
                org=org, model=name, started_at=NOW - timedelta(hours=2), ended_at=NOW
            )
            make_query(org=org, model=name, occurred_at=NOW - timedelta(hours=1))

    add_models(0, 1)
    client.get(url)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    small = count()
    add_models(1, 8)
    assert count() == small


def test_the_session_chip_shows_the_balance_in_core_hours(client, member):
    org = member.organization
    grant_credits(org=org, amount="100")
    worker = WorkerType.objects.get(is_default=True)
    core_hours = D(100) * worker.cores / worker.hourly_rate
    for url in (f"/o/{org.slug}/", f"/o/{org.slug}/usage/"):
        html = client.get(url).content.decode()
        chip = re.search(r'data-testid="chip-core-hours"[^>]*>([^<]*)<', html).group(1)
        assert chip == f"{core_hours:,.1f} core-hours"
