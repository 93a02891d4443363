"""Usage → Explore as a page: the same figures as the API, every state a URL, errors
on the form, nothing of another organization, and the CSV of exactly the table and
series (seeded in tests/insights/explorer_seed.py)."""

import csv
import io
import re

import pytest

from tests.factories import make_api_key, make_member, make_org, make_user

pytestmark = pytest.mark.django_db

RANGE = {"start": "2026-10-31T12:45", "end": "2026-11-02T10:30"}  # local (New York)


@pytest.fixture
def member_client(client, explorer_seeded):
    user = make_user()
    make_member(org=explorer_seeded["org"], user=user, role="member")
    client.force_login(user)
    return client


def _url(seeded, csv=False):
    return f"/o/{seeded['org'].slug}/usage/explore{'.csv' if csv else '/'}"


def _rows(html: str) -> dict[str, list[str]]:
    rows = {}
    for row in re.findall(r'<tr data-testid="explore-row">(.*?)</tr>', html, re.S):
        label = re.search(r"<th[^>]*>(.*?)</th>", row, re.S).group(1).strip()
        rows[label] = [c.strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    return rows


def test_the_page_shows_the_groups_with_share_and_change(member_client, explorer_seeded):
    response = member_client.get(_url(explorer_seeded), {**RANGE, "group_by": "kind"})
    assert response.status_code == 200
    html = response.content.decode()
    # Figures by hand (explorer_seed): queries 4.60, worker 1.00, jobs 0.78 of 6.38;
    # previous period 2.00 (one query).
    assert _rows(html) == {
        "Queries": ["4.60", "72.1%", "2.00", "+130.0%"],
        "Worker sessions": ["1.00", "15.7%", "0.00", "new"],
        "Jobs": ["0.78", "12.2%", "0.00", "new"],
    }
    assert 'data-testid="explore-total">6.38<' in html
    assert "+219.0%" in html
    assert "Live" not in re.search(r'data-testid="freshness">(.*?)<', html).group(1)
    assert "explore-figure" in html  # the stacked chart


def test_htmx_swaps_only_the_results(member_client, explorer_seeded):
    response = member_client.get(
        _url(explorer_seeded),
        {**RANGE, "group_by": "model"},
        headers={"HX-Request": "true", "HX-Target": "explore"},
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="explore">')
    assert "<html" not in html
    assert "llama-3.1-70b" in html


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"start": "2026-11-02T10:30", "end": "2026-10-31T12:45"}, "end", "end must be after"),
        ({**RANGE, "start": "2025-10-01T00:00", "bucket": "1h"}, "bucket", "31 days"),
        ({**RANGE, "metric": "dollars"}, "metric", "Select a valid choice"),
        ({**RANGE, "start": "not a date"}, "start", "Enter a valid date/time"),
    ],
)
def test_bad_parameters_are_form_errors(member_client, explorer_seeded, params, field, message):
    response = member_client.get(_url(explorer_seeded), params)
    assert response.status_code == 400
    html = response.content.decode()
    error = re.search(rf'data-testid="error-{field}">(.*?)</span>', html, re.S)
    assert error and message in error.group(1), html[:2000]
    assert 'data-testid="explore-invalid"' in html


def test_another_organizations_keys_are_neither_offered_nor_accepted(
    member_client, explorer_seeded
):
    theirs, _secret = make_api_key(org=make_org(), name="Their secret project")
    page = member_client.get(_url(explorer_seeded), RANGE).content.decode()
    assert "Their secret project" not in page
    assert f'value="{explorer_seeded["a"].pk}"' in page  # ours are offered
    response = member_client.get(_url(explorer_seeded), {**RANGE, "api_key": theirs.pk})
    assert response.status_code == 400
    assert 'data-testid="error-api_key"' in response.content.decode()


def test_a_filter_on_our_key_narrows_the_figures(member_client, explorer_seeded):
    response = member_client.get(
        _url(explorer_seeded), {**RANGE, "group_by": "kind", "api_key": explorer_seeded["a"].pk}
    )
    rows = _rows(response.content.decode())
    assert {label: cells[0] for label, cells in rows.items()} == {
        "Queries": "1.60",
        "Worker sessions": "1.00",
        "Jobs": "0.30",
    }


def test_a_stranger_gets_a_404(client, explorer_seeded):
    client.force_login(make_user())
    assert client.get(_url(explorer_seeded), RANGE).status_code == 404
    assert client.get(_url(explorer_seeded, csv=True), RANGE).status_code == 404


def test_the_csv_is_one_long_table_of_bucket_group_value_unit(member_client, explorer_seeded):
    response = member_client.get(_url(explorer_seeded, csv=True), {**RANGE, "group_by": "kind"})
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(text)))
    # One header, then rows of the same four columns: nothing else in the file.
    assert rows[0] == ["bucket", "group", "value", "unit"]
    assert len(rows) == 1 + 3 * 3  # three days, three groups
    assert all(len(row) == 4 and row[3] == "credits" for row in rows[1:])
    assert rows[1] == ["2026-10-31T12:45:00-04:00", "Queries", "1.5", "credits"]
    days: dict[str, float] = {}
    for bucket, _group, value, _unit in rows[1:]:
        days[bucket] = days.get(bucket, 0) + float(value)
    # By hand (explorer_seed): 2.98, 3.30 and 0.10 credits on the three local days.
    assert [round(v, 2) for v in days.values()] == [2.98, 3.30, 0.10]


def test_the_group_table_is_a_download_of_its_own(member_client, explorer_seeded):
    url = f"/o/{explorer_seeded['org'].slug}/usage/explore-groups.csv"
    response = member_client.get(url, {**RANGE, "group_by": "kind"})
    assert response.status_code == 200
    assert "-groups.csv" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == [
        "group",
        "value",
        "unit",
        "share_percent",
        "previous_period",
        "change_percent",
    ]
    assert rows[1] == ["Queries", "4.6", "credits", "72.1", "2", "130.0"]
    assert len(rows) == 4  # three groups, no total row to double-count
    page = member_client.get(_url(explorer_seeded), {**RANGE, "group_by": "kind"})
    assert 'data-testid="explore-groups-csv"' in page.content.decode()


def test_the_page_costs_a_bounded_number_of_queries(
    member_client, explorer_seeded, django_assert_max_num_queries
):
    # 31 (one of them the projects offered as filters), plus a session's first request of
    # the minute recording where it was last seen (a read, an insert and their
    # savepoints: Settings → Security's session list).
    with django_assert_max_num_queries(36):
        response = member_client.get(
            _url(explorer_seeded), {**RANGE, "group_by": "api_key", "bucket": "1h"}
        )
    assert response.status_code == 200


def test_a_bad_hourly_range_through_htmx_answers_the_form_with_its_error(
    member_client, explorer_seeded
):
    response = member_client.get(
        _url(explorer_seeded),
        {"start": "2026-08-22T00:00", "end": "2026-11-20T00:00", "bucket": "1h"},
        headers={"HX-Request": "true", "HX-Target": "explore"},
    )
    # A 400 that console.js swaps in: the form, the error beside Granularity, and no
    # chart or table of the settings before.
    assert response.status_code == 400
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="explore">')
    error = re.search(r'data-testid="error-bucket">(.*?)</span>', html, re.S).group(1)
    assert "up to 31 days; this range is 90 days" in error and "Choose Day" in error
    assert "explore-figure" not in html and "explore-table" not in html
    assert 'data-testid="explore-invalid"' in html


def test_the_page_says_which_records_its_figures_count(member_client, explorer_seeded):
    html = member_client.get(_url(explorer_seeded), {**RANGE, "group_by": "model"}).content
    assert "Counts queries, worker sessions and jobs." in html.decode()
    only = member_client.get(_url(explorer_seeded), {**RANGE, "kind": "query"}).content
    assert "Counts queries only." in only.decode()
