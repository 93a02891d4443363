"""The usage panel page, its htmx partials and the timeline CSV."""

import csv
import io
import re
from datetime import timedelta
from decimal import ROUND_HALF_UP
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import PriceModel
from core.exports import csv_cell
from tests.factories import (
    make_api_key,
    make_controller,
    make_job,
    make_member,
    make_org,
    make_query,
)
from tests.insights import panel_seed as seed
from tests.insights.panel_seed import NOW

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]

HX = {"HX-Request": "true"}


@pytest.fixture
def member(client):
    member = make_member(org=make_org(tier="developer"))
    client.force_login(member.user)
    return member


def panel_url(org, query: str = "") -> str:
    return f"/o/{org.slug}/usage/{query}"


def csv_url(org) -> str:
    return f"/o/{org.slug}/usage/timeline.csv"


def text_of(html: str, testid: str) -> list[str]:
    """The text of every element with this data-testid (leaf elements)."""
    return [
        re.sub(
            r"\s+", " ", re.sub(r"<span class=\"credits\"[^>]*>([^<]*)</span>", r"\1", v)
        ).strip()
        for v in re.findall(
            rf'data-testid="{testid}"[^>]*>((?:[^<]|<span class="credits"[^>]*>[^<]*</span>)*)<',
            html,
        )
    ]


def one(html: str, testid: str) -> str:
    values = text_of(html, testid)
    assert len(values) == 1, (testid, values)
    return values[0]


def cards(html: str, testid: str) -> list[str]:
    """The HTML of each card with this data-testid, in page order."""
    return html.split(f'data-testid="{testid}"')[1:]


def n(value: int) -> str:
    return f"{value:,}"


def c(value: D) -> str:
    """Credits as the panel shows them: two places, or two significant digits below a cent
    (tests/billing/test_credit_format.py has the rule's table)."""
    if 0 < value < D("0.01"):
        return f"{value.quantize(D(1).scaleb(value.adjusted() - 1), rounding=ROUND_HALF_UP):f}"
    return f"{value.quantize(D('0.01'), rounding=ROUND_HALF_UP):,.2f}"


def h(value: D) -> str:
    return f"{value.quantize(D('0.1'), rounding=ROUND_HALF_UP):,}"


@pytest.mark.parametrize("window", list(seed.WINDOW_STARTS))
def test_every_card_matches_a_reference_count_in_every_window(client, member, window):
    seed.seed(member.organization)
    response = client.get(panel_url(member.organization, f"?window={window}"))
    assert response.status_code == 200
    html = response.content.decode()

    o = seed.expected_overview(window)
    assert one(html, "jobs-submitted") == n(o["submitted"])
    assert one(html, "jobs-completed") == n(o["completed"])
    assert one(html, "jobs-running") == n(o["running"])
    assert one(html, "core-hours-billed") == h(o["core_hours_managed"] + o["core_hours_byoc"])
    assert one(html, "core-hours-managed") == h(o["core_hours_managed"])
    assert one(html, "core-hours-byoc") == h(o["core_hours_byoc"])
    assert one(html, "controller-jobs") == n(o["on_controllers"])
    assert one(html, "managed-jobs") == n(o["managed"])
    assert one(html, "failure-pressure") == n(o["failed"] + o["cancelled"])
    assert one(html, "jobs-failed") == n(o["failed"])
    assert one(html, "jobs-cancelled") == n(o["cancelled"])
    assert f"{c(o['wasted_credits'])} credits" in one(html, "wasted-total")

    names = {"lab": "Lab workstation", "ci": "CI runner", None: "Unattributed"}
    expected_keys = seed.expected_keys(window)
    key_cards = cards(html, "key-card")
    assert len(key_cards) == len(expected_keys)
    for key, figures in expected_keys.items():
        [card] = [c for c in key_cards if f"<h3>{names[key]}</h3>" in c]
        assert one(card, "key-jobs") == n(figures["jobs"])
        assert one(card, "key-core-hours") == h(figures["core_hours"])
        assert one(card, "key-running") == n(figures["running"])
        assert one(card, "key-byoc") == n(figures["byoc"])
        assert text_of(card, "key-failures")[0] == (
            f"{figures['failed']} failed / {figures['cancelled']} cancelled"
        )
        if figures["failed"] or figures["cancelled"]:
            assert f"{c(figures['wasted_credits'])} credits" in text_of(card, "key-wasted")[0]
    assert ("Unattributed" in html) == (None in expected_keys)

    controller_cards = cards(html, "controller-card")
    assert [re.search(r"<h3>(.*?)</h3>", c).group(1) for c in controller_cards] == [
        "dgx-01",
        "edge-02",
        "idle-03",
    ]
    for card, (name, figures) in zip(
        controller_cards, seed.expected_controllers(window).items(), strict=True
    ):
        assert text_of(card, "controller-handled")[0] == n(figures["handled"]), name
        assert text_of(card, "controller-running")[0] == n(figures["running"]), name
        assert text_of(card, "controller-completed")[0] == n(figures["completed"]), name
        assert text_of(card, "controller-core-hours")[0] == h(figures["core_hours"]), name
    assert [text_of(c, "controller-status")[0] for c in controller_cards] == [
        "Online",
        "Offline",
        "Offline",
    ]

    for model, figures in seed.expected_models(window).items():
        # The model's name links into the explorer, filtered on it.
        name = rf"<a [^>]*>{re.escape(model)}</a>"
        row = re.search(rf"<tr><td>{name}</td>(.*?)</tr>", html).group(1)
        cells = re.findall(r'<td class="num">([^<]*)</td>', row)
        assert cells[0] == n(figures["queries"]) and cells[3] == n(figures["tokens"]), model


def test_default_window_is_30_days_and_unknown_windows_fall_back_to_it(client, member):
    org = member.organization
    for query in ("", "?window=nonsense"):
        html = client.get(panel_url(org, query)).content.decode()
        assert 'data-window="30d"' in html
        assert re.search(r'data-window="30d" aria-current="true">30 days<', html)


def test_the_switcher_links_work_with_and_without_javascript(client, member):
    html = client.get(panel_url(member.organization)).content.decode()
    links = re.findall(r'<a href="([^"]+)" hx-get="([^"]+)"[^>]*hx-push-url="true"', html)
    url = panel_url(member.organization)
    expected = [f"{url}?window={key}" for key in ("24h", "7d", "30d", "all")]
    assert [href for href, _ in links] == expected
    assert [get for _, get in links] == expected


def test_htmx_switch_swaps_the_whole_window_in_one_partial(client, member):
    seed.seed(member.organization)
    response = client.get(
        panel_url(member.organization, "?window=24h"), headers={**HX, "HX-Target": "usage-window"}
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="usage-window"')
    assert "<html" not in html and "session-chip" not in html
    # Every card, chart and list of the window is in it.
    for testid in ("jobs-submitted", "key-card", "controller-card", "allocation", "models-table"):
        assert f'data-testid="{testid}"' in html
    assert 'id="timeline-figure"' in html and 'id="token-figure"' in html
    assert one(html, "jobs-submitted") == "3"
    assert re.search(r'data-window="24h" aria-current="true"', html)
    assert "HX-Request" in response["Vary"]


def test_htmx_without_a_known_target_gets_the_window_partial(client, member):
    html = client.get(panel_url(member.organization), headers=HX).content.decode()
    assert html.lstrip().startswith('<div id="usage-window"')


def test_controller_load_partial_refreshes_on_its_own(client, member):
    seed.seed(member.organization)
    html = client.get(
        panel_url(member.organization, "?window=7d"), headers={**HX, "HX-Target": "controller-load"}
    ).content.decode()
    assert html.lstrip().startswith('<section id="controller-load"')
    assert len(cards(html, "controller-card")) == 3
    assert 'data-testid="jobs-submitted"' not in html
    assert 'hx-trigger="every 60s"' in html and "window=7d" in html


def test_history_restore_gets_the_whole_page(client, member):
    html = client.get(
        panel_url(member.organization, "?window=7d"),
        headers={**HX, "HX-History-Restore-Request": "true"},
    ).content.decode()
    assert "<html" in html and 'id="usage-window"' in html


def test_an_empty_organization_sees_empty_states_and_the_controller_placeholder(client, member):
    html = client.get(panel_url(member.organization)).content.decode()
    assert 'data-testid="controller-placeholder"' in html
    assert "No controllers connected yet" in html
    assert "No jobs in this window" in html
    assert "No jobs were submitted in the last 14 days" in html
    assert html.count("No queries in this window") == 4
    assert one(html, "jobs-submitted") == "0"
    assert 'data-plotly-figure="timeline-figure"' not in html


def test_times_show_in_the_organizations_time_zone(client, member):
    org = member.organization
    org.time_zone = "Asia/Tokyo"
    org.save(update_fields=["time_zone"])
    html = client.get(panel_url(org, "?window=24h")).content.decode()
    # Now is 21 Nov 15:30 UTC: 22 Nov 00:30 in Tokyo.
    assert "22 Nov 2026, 00:30 JST" in one(html, "window-range")


def test_the_panel_loads_plotly_from_static(client, member):
    html = client.get(panel_url(member.organization)).content.decode()
    assert re.search(r'<script src="/static/vendor/plotly\.min\.js" defer></script>', html)
    # No inline script code (CSP): only JSON data blocks.
    for attrs in re.findall(r"<script([^>]*)>", html):
        assert "src=" in attrs or 'type="application/json"' in attrs, attrs


# --- CSV ------------------------------------------------------------------------------


def test_csv_has_fourteen_days_of_raw_figures(client, member):
    seed.seed(member.organization)
    response = client.get(csv_url(member.organization))
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert 'attachment; filename="usage-timeline-' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert list(rows[0]) == [
        "date",
        "submitted",
        "completed",
        "failed",
        "cancelled",
        "core_hours_managed",
        "core_hours_byoc",
    ]
    assert len(rows) == 14
    assert (rows[0]["date"], rows[-1]["date"]) == ("2026-11-08", "2026-11-21")
    # Reference: bucket the seeded jobs by UTC calendar day.
    by_day: dict[str, dict] = {}
    for job in seed.JOBS:
        day = by_day.setdefault(
            job.at.date().isoformat(),
            {"submitted": 0, "completed": 0, "failed": 0, "cancelled": 0, "m": D(0), "b": D(0)},
        )
        day["submitted"] += 1
        if job.status in ("completed", "failed", "cancelled"):
            day[job.status] += 1
        day["b" if job.controller else "m"] += job.core_hours
    for row in rows:
        want = by_day.get(
            row["date"],
            {"submitted": 0, "completed": 0, "failed": 0, "cancelled": 0, "m": D(0), "b": D(0)},
        )
        assert int(row["submitted"]) == want["submitted"], row
        assert int(row["completed"]) == want["completed"], row
        assert int(row["failed"]) == want["failed"], row
        assert int(row["cancelled"]) == want["cancelled"], row
        assert D(row["core_hours_managed"]) == want["m"], row
        assert D(row["core_hours_byoc"]) == want["b"], row


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("2026-11-21", "2026-11-21"),
        (12, "12"),
        (None, ""),
    ],
)
def test_csv_cells_never_run_as_formulas(value, cell):
    assert csv_cell(value) == cell


# --- Access -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("", {}),
        ("?window=24h", {**HX, "HX-Target": "usage-window"}),
        ("?window=24h", {**HX, "HX-Target": "controller-load"}),
        ("timeline.csv", {}),
    ],
)
def test_another_organizations_member_gets_404(client, path, headers):
    victim = make_org()
    seed.seed(victim)
    outsider = make_member()
    client.force_login(outsider.user)
    response = client.get(f"/o/{victim.slug}/usage/{path}", headers=headers)
    assert response.status_code == 404
    assert b"Lab workstation" not in response.content


@pytest.mark.parametrize("path", ["", "timeline.csv"])
def test_anonymous_visitors_are_sent_to_log_in(client, path):
    org = make_org()
    response = client.get(f"/o/{org.slug}/usage/{path}")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- Query counts -----------------------------------------------------------------------


def _grow(org, size: int, first: int = 0) -> None:
    """size more keys, controllers and models, each with jobs and queries in every window."""
    for i in range(first, first + size):
        key, _ = make_api_key(org=org, name=f"key {i}")
        controller, _ = make_controller(org=org, name=f"node-{i}")
        model = PriceModel.objects.create(
            name=f"model-{org.pk}-{i}",
            input_price_per_million=D("1"),
            output_price_per_million=D("1"),
        )
        for hours in (1, 30, 200):
            at = NOW - timedelta(hours=hours)
            make_job(org=org, submitted_at=at, api_key=key, controller=controller, core_hours=1)
            make_job(org=org, submitted_at=at, api_key=key, status="failed", core_hours=1)
            make_query(
                org=org,
                occurred_at=at,
                model=model.name,
                endpoint=f"/v1/e{i}",
                member=f"m{i}@example.com",
            )


def _count(client, url: str, headers: dict | None = None) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, headers=headers or {})
        if response.streaming:
            b"".join(response.streaming_content)
    assert response.status_code == 200
    return len(queries)


# Bounds include one query for the rollup coverage (which days the rollups answer),
# one for the freshness line (the newest batch received), for controller cards the
# controller list apart from its jobs' figures, and the project switcher's choices; a
# project chosen adds one (checked against the projects the person sees).
@pytest.mark.parametrize(
    ("query", "headers", "bound"),
    [
        ("?window=30d", {}, 21),
        ("?window=all", {**HX, "HX-Target": "usage-window"}, 19),
        ("?window=24h", {**HX, "HX-Target": "controller-load"}, 9),
        ("?window=30d&project={default}", {}, 22),
        ("?window=all&project={default}", {**HX, "HX-Target": "usage-window"}, 20),
        ("?window=24h&project={default}", {**HX, "HX-Target": "controller-load"}, 10),
    ],
)
def test_query_count_is_bounded_and_does_not_grow_with_keys_controllers_models(
    client, member, django_assert_max_num_queries, query, headers, bound
):
    org = member.organization
    _grow(org, 1)
    url = panel_url(org, query.format(default=org.projects.get().pk))
    client.get(url, headers=headers)  # the first visit also records the org in the session
    small = _count(client, url, headers)
    _grow(org, 8, first=1)
    with django_assert_max_num_queries(bound):
        large = _count(client, url, headers)
    assert large == small, (small, large)


def test_csv_query_count_does_not_grow(client, member):
    org = member.organization
    _grow(org, 1)
    client.get(csv_url(org))
    small = _count(client, csv_url(org))
    _grow(org, 6, first=1)
    assert _count(client, csv_url(org)) == small <= 6


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0 min"), (20, "< 1 min"), (1500, "25 min"), (3600, "1 h"), (4_503_900, "1,251 h 05 min")],
)
def test_durations_read_as_hours_and_minutes(seconds, shown):
    from insights.templatetags.usage_format import hours_minutes

    assert hours_minutes(timedelta(seconds=seconds)) == shown
