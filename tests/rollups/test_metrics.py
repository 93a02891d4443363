"""The figures declared in rollups/metrics.py are the ones every writer computes and
every reader offers: a declared figure without its expression, or an Explore metric no
kind reads, fails here rather than leaving a column at its default."""

from datetime import UTC, date, datetime

import pytest

from insights.selectors.report_sources import METRIC_UNITS, METRICS, report_sources
from rollups.metrics import JOB_FIGURES, MATCHING_FIGURES, QUERY_FIGURES, WORKER_FIGURES
from rollups.metrics import METRICS as DECLARED_METRICS
from rollups.services.build import KINDS, query_dimension_selects, rollup_selects
from tests.factories import make_org

pytestmark = pytest.mark.django_db

DECLARED = {
    "job": JOB_FIGURES,
    "query": QUERY_FIGURES,
    "worker": WORKER_FIGURES,
    "matching": MATCHING_FIGURES,
}
# The columns every rollup row gets from the interval, not from its records.
CONSTANTS = {"organization_id", "day", "hour", "dimension", "endpoint", "member"}


def _computed(queryset) -> set[str]:
    return {name.removeprefix("r_") for name in queryset.query.annotations} - CONSTANTS


def test_every_declared_figure_is_computed_from_the_records_by_its_rollup():
    org = make_org()
    lo, hi = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)
    selects = rollup_selects(org, date(2026, 11, 1), lo, hi)
    for kind in KINDS:
        declared = [f.name for f in DECLARED[kind.name]]
        assert list(kind.figures) == declared
        assert _computed(selects[kind.name]) == set(declared), kind.name
    for select in query_dimension_selects(org, date(2026, 11, 1)):
        assert _computed(select) == {f.name for f in QUERY_FIGURES}


def test_every_explore_metric_is_read_from_a_figure_of_some_kind_in_its_order():
    assert list(METRICS) == [m.name for m in DECLARED_METRICS]
    assert METRICS["tokens"] == "Tokens (in + out)"
    assert METRIC_UNITS["worker_runtime"] == "hours"
    read = set()
    for source in report_sources():
        for metric, (raw, rolled) in source.metrics.items():
            read.add(metric)
            column = rolled.source_expressions[0].name
            # The rolled-up aggregate names a column both aggregate tables have.
            source.rolled._meta.get_field(column)
            source.bucketed._meta.get_field(column)
            if raw is not None and raw.source_expressions[0].name != "id":
                source.raw._meta.get_field(raw.source_expressions[0].name)
    assert read == set(METRICS)
    declared = {f.metric for figures in DECLARED.values() for f in figures} - {None}
    assert declared <= set(METRICS)
