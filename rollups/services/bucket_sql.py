# ruff: noqa: S608 - the SQL is built from model metadata and constants; values are parameters
"""The bucket upserts' SQL, one statement per record kind: SELECT … GROUP BY … over the
rows just written, MERGEd into the buckets on PostgreSQL (INSERT … ON CONFLICT DO UPDATE
on SQLite; BucketUpsert says why), adding their figures to each bucket
(rollups/services/aggregates.py runs them; docs/data-lifecycle.md). The figure columns
come from rollups/metrics.py; what each figure is computed from is written here, in SQL,
for speed."""

from dataclasses import dataclass

from django.db import connection

from rollups.metrics import (
    JOB_FIGURES,
    MATCHING_FIGURES,
    QUERY_FIGURES,
    WORKER_FIGURES,
    Figure,
    figure_names,
)
from rollups.models import JobBucket, MatchingBucket, QueryBucket, QueryDimension, WorkerBucket


def pg_in_use() -> bool:
    return connection.vendor == "postgresql"


def _bucket(column: str, width: int) -> str:
    """The bucket (its first instant) of a timestamp column."""
    if pg_in_use():
        return f"date_bin(interval '{width} seconds', {column}, timestamptz '1970-01-01 00:00Z')"
    # SQLite keeps times as milliseconds: whole seconds are taken from the text, so
    # 11:59:59.999999 is not rounded into the next minute.
    seconds = f"CAST(strftime('%%s', substr({column}, 1, 19)) AS INTEGER)"
    return f"datetime(({seconds} / {width}) * {width}, 'unixepoch')"


def _greatest(a: str, b: str) -> str:
    return f"GREATEST({a}, {b})" if pg_in_use() else f"MAX({a}, {b})"


@dataclass(frozen=True)
class BucketUpsert:
    """One bucket table's upsert: the select's rows (in `columns` order) added to the
    rows with the same dimensions (`conflict`: the unique index's items, columns and
    COALESCE(column, 0)), inserted where none exists. Figures summed as maxima keep the
    greater."""

    table: str
    conflict: str
    columns: list[str]
    figures: tuple[Figure, ...]
    select: str

    def _sets(self, old: str, new: str) -> str:
        sets = [f"{c} = {old}.{c} + {new}.{c}" for c in figure_names(self.figures, "add")]
        sets += [
            f"{c} = " + _greatest(f"{old}.{c}", f"{new}.{c}")
            for c in figure_names(self.figures, "max")
        ]
        return ", ".join(sets)

    def sql(self) -> str:
        """INSERT … SELECT … ON CONFLICT DO UPDATE (SQLite)."""
        return (
            f"INSERT INTO {self.table} ({', '.join(self.columns)}) {self.select} "
            f"ON CONFLICT ({self.conflict}) DO UPDATE SET {self._sets(self.table, 'excluded')}"
        )

    def merge(self) -> str:
        """PostgreSQL: MERGE, one join of the select's rows to the table by the dimensions'
        index, then an update of each row found and an insert of each one not.

        ON CONFLICT DO UPDATE did the same row by row, and for each row that exists (most
        of a batch's: every minute a worker session runs through) also tried the insert
        first and wrote a row lock to the WAL before the update. MERGE does not guard
        against another transaction inserting the same dimensions meanwhile (that one
        would fail on the unique index, and its transaction roll back whole): ingestion,
        job moves and the rollups' rebuilds all hold the organization's usage lock
        (usage/locks.py) while they write buckets. Measured per 1,000-record batch
        (docs/benchmarks.md): the worker buckets' WAL 27,400 records (2.28 MB) with ON
        CONFLICT, 19,700 (1.85 MB) with MERGE."""
        dims = [d.strip() for d in self.conflict.replace(", 0)", ")").split(",")]
        match = " AND ".join(
            f"COALESCE(t.{d[9:-1]}, 0) = COALESCE(s.{d[9:-1]}, 0)"
            if d.startswith("COALESCE(")
            else f"t.{d} = s.{d}"
            for d in dims
        )
        columns = ", ".join(self.columns)
        values = ", ".join(f"s.{c}" for c in self.columns)
        return (
            f"MERGE INTO {self.table} AS t USING ({self.select}) AS s({columns}) ON {match} "
            f"WHEN MATCHED THEN UPDATE SET {self._sets('t', 's')} "
            f"WHEN NOT MATCHED THEN INSERT ({columns}) VALUES ({values})"
        )


def _upsert(
    table: str, conflict: str, columns: list[str], figures: tuple[Figure, ...], select: str
) -> BucketUpsert:
    return BucketUpsert(table, conflict, columns, figures, select)


def job_bucket_sql(sign: str, width: int) -> BucketUpsert:
    b = _bucket("submitted_at", width)
    wasted = "status IN ('failed', 'cancelled')"
    select = (
        f"SELECT organization_id, {b}, project_id, api_key_id, controller_id, {sign}COUNT(*), "
        + ", ".join(
            f"{sign}SUM(CASE WHEN status = '{s}' THEN 1 ELSE 0 END)"
            for s in ("completed", "running", "failed", "cancelled")
        )
        + f", {sign}SUM(core_hours), {sign}SUM(credits), "
        f"{sign}SUM(CASE WHEN {wasted} THEN core_hours ELSE 0 END), "
        f"{sign}SUM(CASE WHEN {wasted} THEN credits ELSE 0 END), MAX(submitted_at) "
        "FROM b WHERE organization_id = %s AND submitted_at >= %s AND submitted_at < %s "
        f"GROUP BY organization_id, {b}, project_id, api_key_id, controller_id"
    )
    return _upsert(
        JobBucket._meta.db_table,
        "organization_id, bucket, project_id, COALESCE(api_key_id, 0), COALESCE(controller_id, 0)",
        ["organization_id", "bucket", "project_id", "api_key_id", "controller_id"]
        + figure_names(JOB_FIGURES),
        JOB_FIGURES,
        select,
    )


def query_bucket_sql(width: int) -> BucketUpsert:
    b = _bucket("occurred_at", width)
    sums = "COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(total_tokens), SUM(credits)"
    source = "FROM b WHERE organization_id = %s AND occurred_at >= %s AND occurred_at < %s"
    null = "CAST(NULL AS integer)" if pg_in_use() else "NULL"
    shapes = (
        (QueryDimension.DETAIL, "model_id", "api_key_id", "endpoint", "member", ""),
        (QueryDimension.MODEL, "model_id", null, "''", "''", ", model_id"),
        (QueryDimension.ENDPOINT, null, null, "endpoint", "''", ", endpoint"),
        (QueryDimension.MEMBER, null, null, "''", "member", ", member"),
    )
    selects = []
    for dimension, model, key, endpoint, member, group in shapes:
        group = group or ", model_id, api_key_id, endpoint, member"
        selects.append(
            f"SELECT organization_id, '{dimension}', {b}, project_id, {model}, {key}, "
            f"{endpoint}, {member}, {sums} {source} "
            f"GROUP BY organization_id, {b}, project_id{group}"
        )
    return _upsert(
        QueryBucket._meta.db_table,
        "organization_id, dimension, bucket, endpoint, member, project_id, "
        "COALESCE(model_id, 0), COALESCE(api_key_id, 0)",
        ["organization_id", "dimension", "bucket", "project_id", "model_id", "api_key_id"]
        + ["endpoint", "member", *figure_names(QUERY_FIGURES)],
        QUERY_FIGURES,
        " UNION ALL ".join(selects),
    )


_WORKER_COLUMNS = [
    "organization_id",
    "bucket",
    "project_id",
    "model_id",
    "api_key_id",
    *figure_names(WORKER_FIGURES),
]
_WORKER_CONFLICT = "organization_id, bucket, model_id, project_id, COALESCE(api_key_id, 0)"


def worker_bucket_sql_pg(width: int) -> BucketUpsert:
    """Each session spread over the buckets of [lo, hi) it overlaps (a zero-length one:
    the bucket it starts in), summed per bucket, project, model and key.

    A session's first and last buckets carry its partial runtime (and, in the first, its
    start and credits); every bucket between them gets one carried-in session and a whole
    bucket of runtime. Those runs are swept rather than spread: +1 where a run begins, -1
    where it ends, a running sum per model and key, and one row per bucket between two
    events. The rows summed are then the output's, not every (session, bucket) pair: a
    batch of long sessions spreads over tens of thousands of those.
    """
    step = f"interval '{width} seconds'"
    last = (
        f"CASE WHEN ended_at > started_at THEN "
        f"{_bucket('ended_at - interval ' + chr(39) + '1 microsecond' + chr(39), width)} "
        f"ELSE {_bucket('started_at', width)} END"
    )
    dims = "organization_id, project_id, model_id, api_key_id"
    select = (
        # Each session with its first (f) and last (l) bucket within [lo, hi).
        f"WITH ws AS (SELECT {dims}, started_at, ended_at, credits, "
        f"GREATEST({_bucket('started_at', width)}, %s) AS f, "
        f"LEAST({last}, %s - {step}) AS l "
        "FROM b WHERE organization_id = %s AND (ended_at > %s OR started_at >= %s) "
        "AND started_at < %s), "
        # The first bucket, and the last when it is another.
        f"ws_edge AS (SELECT {dims}, f AS bucket, "
        "CASE WHEN started_at >= f THEN 1 ELSE 0 END AS started, "
        "CASE WHEN started_at < f THEN 1 ELSE 0 END AS carried, "
        f"LEAST(ended_at, f + {step}) - GREATEST(started_at, f) AS runtime, "
        "CASE WHEN started_at >= f THEN credits ELSE 0 END AS credits "
        "FROM ws WHERE f <= l "
        f"UNION ALL SELECT {dims}, l, 0, 1, LEAST(ended_at, l + {step}) - l, 0 "
        "FROM ws WHERE l > f), "
        # The whole buckets between: [f + step, l) as +1 at its start, -1 at its end.
        f"ws_event AS (SELECT {dims}, at, CAST(SUM(delta) AS integer) AS delta FROM ("
        f"SELECT {dims}, f + {step} AS at, 1 AS delta FROM ws WHERE l > f + {step} "
        f"UNION ALL SELECT {dims}, l, -1 FROM ws WHERE l > f + {step}) AS e "
        f"GROUP BY {dims}, at), "
        f"ws_run AS (SELECT {dims}, at, SUM(delta) OVER w AS sessions, "
        f"LEAD(at) OVER w AS next_at FROM ws_event "
        f"WINDOW w AS (PARTITION BY {dims} ORDER BY at)), "
        f"ws_whole AS (SELECT {dims}, g.bucket, 0 AS started, r.sessions AS carried, "
        f"r.sessions * {step} AS runtime, 0 AS credits FROM ws_run AS r "
        f"CROSS JOIN LATERAL generate_series(r.at, r.next_at - {step}, {step}) AS g(bucket) "
        "WHERE r.sessions > 0) "
        "SELECT organization_id, bucket, project_id, model_id, api_key_id, SUM(started), "
        "SUM(carried), "
        "SUM(runtime), SUM(credits) "
        "FROM (SELECT * FROM ws_edge UNION ALL SELECT * FROM ws_whole) AS spread "
        "GROUP BY organization_id, bucket, project_id, model_id, api_key_id"
    )
    return _upsert(
        WorkerBucket._meta.db_table, _WORKER_CONFLICT, _WORKER_COLUMNS, WORKER_FIGURES, select
    )


def _micros(column: str) -> str:
    """SQLite: a stored timestamp as integer microseconds since the epoch."""
    return (
        f"(CAST(strftime('%%s', substr({column}, 1, 19)) AS INTEGER) * 1000000 "
        f"+ CAST(substr({column} || '.000000', 21, 6) AS INTEGER))"
    )


def worker_bucket_sql_sqlite(width: int) -> str:
    s, e = _micros("started_at"), _micros("ended_at")
    first = f"({s} / 1000000 / {width}) * {width}"
    last = f"CASE WHEN {e} > {s} THEN (({e} - 1) / 1000000 / {width}) * {width} ELSE {first} END"
    select = (
        "SELECT organization_id, datetime(b, 'unixepoch'), project_id, model_id, api_key_id, "
        "SUM(CASE WHEN s >= b * 1000000 THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN s < b * 1000000 THEN 1 ELSE 0 END), "
        f"SUM(MIN(e, (b + {width}) * 1000000) - MAX(s, b * 1000000)), "
        "SUM(CASE WHEN s >= b * 1000000 THEN credits ELSE 0 END) "
        "FROM span WHERE true GROUP BY organization_id, b, project_id, model_id, api_key_id"
    )
    return (
        ", span(organization_id, project_id, model_id, api_key_id, credits, s, e, b, last) "
        f"AS (SELECT organization_id, project_id, model_id, api_key_id, credits, {s}, {e}, "
        f"MAX({first}, CAST(strftime('%%s', %s) AS INTEGER)), "
        f"MIN({last}, CAST(strftime('%%s', %s) AS INTEGER) - {width}) "
        "FROM b WHERE organization_id = %s "
        "AND (ended_at > %s OR started_at >= %s) AND started_at < %s "
        "UNION ALL SELECT organization_id, project_id, model_id, api_key_id, credits, s, e, "
        f"b + {width}, last FROM span WHERE b + {width} <= last) "
        + _upsert(
            WorkerBucket._meta.db_table,
            _WORKER_CONFLICT,
            _WORKER_COLUMNS,
            WORKER_FIGURES,
            select,
        ).sql()
    )


def matching_bucket_sql(width: int) -> BucketUpsert:
    b = _bucket("started_at", width)
    select = (
        f"SELECT organization_id, {b}, project_id, task, api_key_id, COUNT(*), "
        "SUM(num_records), "
        "SUM(run_time_seconds) FROM b WHERE organization_id = %s "
        "AND started_at >= %s AND started_at < %s "
        f"GROUP BY organization_id, {b}, project_id, task, api_key_id"
    )
    return _upsert(
        MatchingBucket._meta.db_table,
        "organization_id, bucket, task, project_id, COALESCE(api_key_id, 0)",
        [
            "organization_id",
            "bucket",
            "project_id",
            "task",
            "api_key_id",
            *figure_names(MATCHING_FIGURES),
        ],
        MATCHING_FIGURES,
        select,
    )
