"""manage.py bench_scale: partitioned history, retention and many tenants (PostgreSQL).
Prints figures; not a test. Run it on a database of its own (it adds organizations and
records and drops a month of partitions):

    DATABASE_URL=postgres://.../uc_scale_bench manage.py migrate
    DATABASE_URL=postgres://.../uc_scale_bench manage.py bench_scale [--retention-records N]
        [--orgs 1000 --org-records 1000 --ingest-seconds 30] [--only index,retention,tenants]

index      the replay lookup of a new organization before ANALYZE, on a plain copy of the
           old (unpartitioned) query table with and without its lone organization_id index,
           and the same lookup against usage_recordkey (what ingestion asks now).
retention  one month of N records (default 3 million: 80% queries, 10% jobs, 10% worker
           sessions) four months back, its days rolled up; the month's figures, then
           `usage_retention_run(keep_months=3)` (checks, then detach + drop), the figures
           again: they must be equal, the drop under a second.
tenants    `--orgs` small organizations with `--org-records` records each (yesterday and
           today), one big organization ingesting 1,000-record batches as fast as one
           process can (a subprocess) while the small ones' usage panel is timed in-process
           (p50/p95, before and during); then the nightly and hourly sweeps for all of them:
           what they enqueue (one task per organization) and every task run here, one after
           another (a Celery deployment spreads them over its workers).
"""

# ruff: noqa: S608 (benchmark SQL, built from its own integers, slugs and model ids)

import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from bench.orgs import kept_org
from bench.product import (
    DAILY_MODELS,
    RECORD_MODELS,
    Organization,
    PriceModel,
    RecordKey,
    User,
    jobs_overview,
    queries_by_model,
    rollup_day,
    rollup_hours_org_run,
    rollup_hours_sweep,
    rollup_org_run,
    rollup_sweep,
    usage_by_member,
    usage_records_ingest,
    usage_retention_run,
    worker_runtime_by_model,
)

TABLES = {kind: model._meta.db_table for kind, model in RECORD_MODELS.items()}
KEYS = RecordKey._meta.db_table
# Ingestion's replay probe of the key table (usage/services/record_keys.py), written out:
# one probe of its primary key per id, every column of the key equal, in a LATERAL ...
# LIMIT 1 the planner cannot flatten.
KEYS_PROBE = (
    "SELECT k.client_id FROM unnest(%s::text[]) AS ids(client_id) CROSS JOIN LATERAL ("
    f"SELECT k.client_id, k.at FROM {KEYS} AS k WHERE k.organization_id = %s "
    "AND k.kind = %s AND k.client_id = ids.client_id LIMIT 1) AS k"
)
RETENTION_SLUG = "bench-scale-retention"
BIG_SLUG = "bench-scale-big"
SMALL_PREFIX = "bench-scale-small-"


class _Calls(list):
    """A task's .delay stand-in: records each call's arguments."""

    def __call__(self, *args) -> None:
        self.append(args)


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def month_back(months: int) -> tuple[datetime, datetime]:
    """[start, end) of the calendar month `months` before this one, in UTC: where the
    record tables' partitions are cut."""
    now = timezone.now().astimezone(UTC)
    index = now.year * 12 + now.month - 1 - months  # months since year 0
    start, end = (datetime(i // 12, i % 12 + 1, 1, tzinfo=UTC) for i in (index, index + 1))
    return start, end


def _records_sql(org_id: int, per_org: int, lo: datetime, seconds: int, prefix: str) -> list:
    """INSERT ... SELECT statements writing `per_org` records for the organization in
    [lo, lo + seconds): 80% queries, 10% jobs (completed), 10% worker sessions (10 min)."""
    models = list(PriceModel.objects.filter(is_active=True).values_list("pk", flat=True))
    model = f"(ARRAY{models})[1 + (n % {len(models)})]"
    spread = f"(n::bigint * 7919) % {seconds - 1800}"  # every record ends in the range
    at = f"'{lo.isoformat()}'::timestamptz + make_interval(secs => {spread})"
    queries, jobs = int(per_org * 0.8), int(per_org * 0.1)
    sessions = per_org - queries - jobs
    orgs = f"(SELECT {int(org_id)}::bigint AS org) AS o"
    return [
        (
            f"INSERT INTO {TABLES['query']} (organization_id, client_id, credits, created_at, "
            "model_id, occurred_at, input_tokens, output_tokens, total_tokens, endpoint, "
            f"member) SELECT o.org, '{prefix}q' || n, 0.0001, now(), {model}, {at}, "
            "100 + n % 900, n % 500, 100 + n % 900 + n % 500, '/v1/chat/completions', "
            f"'user' || (n % 7) || '@bench.example' FROM {orgs}, "
            f"generate_series(1, {queries}) AS n"
        ),
        (
            f"INSERT INTO {TABLES['job']} (organization_id, client_id, credits, created_at, "
            "status, cores, submitted_at, started_at, ended_at, core_hours, charge_reference, "
            f"updated_at) SELECT o.org, '{prefix}j' || n, 0.06, now(), 'completed', 8, "
            f"{at}, {at}, {at} + interval '30 minutes', 4, '', now() FROM {orgs}, "
            f"generate_series(1, {jobs}) AS n"
        ),
        (
            f"INSERT INTO {TABLES['worker_session']} (organization_id, client_id, credits, "
            "created_at, model_id, started_at, ended_at, runtime_seconds) "
            f"SELECT o.org, '{prefix}w' || n, 0, now(), {model}, {at}, "
            f"{at} + interval '10 minutes', 600 FROM {orgs}, "
            f"generate_series(1, {sessions}) AS n"
        ),
    ]


def _query(rid: str, at: str, input_tokens: int, output_tokens: int, member: str) -> dict:
    return {
        "id": rid,
        "kind": "query",
        "occurred_at": at,
        "model": "llama-3.1-8b",
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "endpoint": "/v1/chat/completions",
        "member": member,
    }


def _small_batch(org_n: int, size: int, lo: datetime, span: float) -> list[dict]:
    """A small organization's records between yesterday's start and an hour ago: 80%
    queries, 10% completed jobs, 10% ten-minute worker sessions."""
    records = []
    for n in range(size):
        at = lo + timedelta(seconds=(n * 7919 + org_n * 104729) % span)
        stamp = at.isoformat()
        if n % 10 < 8:
            records.append(
                _query(f"q{n}", stamp, 100 + n % 900, n % 500, f"user{n % 7}@bench.example")
            )
        elif n % 10 == 8:
            records.append(
                {
                    "id": f"j{n}",
                    "kind": "job",
                    "status": "completed",
                    "cores": 8,
                    "submitted_at": stamp,
                    "started_at": stamp,
                    "ended_at": (at + timedelta(minutes=30)).isoformat(),
                }
            )
        else:
            records.append(
                {
                    "id": f"w{n}",
                    "kind": "worker_session",
                    "model": "llama-3.1-8b",
                    "started_at": stamp,
                    "ended_at": (at + timedelta(minutes=10)).isoformat(),
                }
            )
    return records


class Command(BaseCommand):
    help = "Benchmark partitioned history, retention and many tenants (PostgreSQL only)."

    def add_arguments(self, parser):
        parser.add_argument("--only", default="index,retention,tenants")
        parser.add_argument("--retention-records", type=int, default=3_000_000)
        parser.add_argument("--orgs", type=int, default=200)
        parser.add_argument("--org-records", type=int, default=1000)
        parser.add_argument("--ingest-seconds", type=int, default=30)
        parser.add_argument("--requests", type=int, default=60)
        parser.add_argument("--probe-rows", type=int, default=2_000_000)
        # Internal: the big organization's ingesting subprocess.
        parser.add_argument("--ingest-for", help=IGNORE_HELP)

    def handle(self, *args, **opts):
        if connection.vendor != "postgresql":
            raise CommandError("bench_scale needs PostgreSQL (DATABASE_URL)")
        if opts["ingest_for"]:
            return self._ingest_loop(opts["ingest_for"], opts["ingest_seconds"])
        sections = set(opts["only"].split(","))
        if "index" in sections:
            self._index_probe(opts["probe_rows"])
        if "retention" in sections:
            self._retention(opts["retention_records"])
        if "tenants" in sections:
            self._tenants(opts)

    def _say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()

    # --- the organization_id index ---------------------------------------------------

    def _lookup_ms(self, cursor, table: str, org_id: int, ids: list[str], kind: str = "") -> tuple:
        where = "organization_id = %s AND client_id = ANY(%s)"
        params: list = [org_id, ids]
        if kind:
            where += " AND kind = %s"
            params.append(kind)
        cursor.execute(
            f"EXPLAIN (ANALYZE, FORMAT JSON) SELECT client_id FROM {table} WHERE {where}",
            params,
        )
        plan = cursor.fetchone()[0][0]
        node = plan["Plan"]
        while node.get("Plans") and "Index Name" not in node:
            node = node["Plans"][0]
        return plan["Execution Time"], node.get("Index Name", node["Node Type"])

    def _lateral_ms(self, cursor, table: str, org_id: int, ids: list[str]) -> tuple:
        cursor.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT r.client_id FROM unnest(%s::text[]) AS "
            f"ids(client_id) CROSS JOIN LATERAL (SELECT * FROM {table} AS t WHERE "
            "t.organization_id = %s AND t.client_id = ids.client_id LIMIT 1) AS r",
            [ids, org_id],
        )
        plan = cursor.fetchone()[0][0]
        stack, index = [plan["Plan"]], "?"
        while stack:
            node = stack.pop()
            if "Index Name" in node:
                index = node["Index Name"]
                break
            stack.extend(node.get("Plans", []))
        return plan["Execution Time"], index

    def _index_probe(self, rows: int) -> None:
        """The replay lookup of a new organization whose rows the statistics have not
        seen yet (autovacuum's ANALYZE comes later), with and without the lone index."""
        self._say(f"\n== replay lookup of a new organization before ANALYZE ({rows:,} rows) ==")
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS bench_probe_query")
            cursor.execute(
                "CREATE TABLE bench_probe_query (id bigserial PRIMARY KEY, organization_id "
                "bigint NOT NULL, client_id varchar(200) NOT NULL, occurred_at timestamptz "
                "NOT NULL, total_tokens bigint NOT NULL, UNIQUE (organization_id, client_id))"
            )
            cursor.execute(
                "CREATE INDEX bench_probe_org_time ON bench_probe_query "
                "(organization_id, occurred_at)"
            )
            cursor.execute("CREATE INDEX bench_probe_org ON bench_probe_query (organization_id)")
            cursor.execute(
                "INSERT INTO bench_probe_query (organization_id, client_id, occurred_at, "
                "total_tokens) SELECT 1000000 + n %% 100, 'q' || n, now() - "
                "make_interval(secs => n %% 8000000), n %% 1000 FROM generate_series(1, %s) AS n",
                [rows],
            )
            cursor.execute("ANALYZE bench_probe_query")
            # A new organization ingests 200k records before the next ANALYZE.
            cursor.execute(
                "INSERT INTO bench_probe_query (organization_id, client_id, occurred_at, "
                "total_tokens) SELECT 2000000, 'new' || n, now(), 1 "
                "FROM generate_series(1, 200000) AS n"
            )
            ids = [f"new{n}" for n in range(150_000, 151_000)]
            for label in ("with the organization_id index", "without it"):
                for form, run in (
                    ("= ANY", self._lookup_ms),
                    ("LATERAL LIMIT 1", self._lateral_ms),
                ):
                    samples, index = [], ""
                    for _ in range(5):
                        ms, index = run(cursor, "bench_probe_query", 2000000, ids)
                        samples.append(ms)
                    self._say(
                        f"1,000-id replay lookup ({form}), {label}: median "
                        f"{statistics.median(samples):.1f} ms (plan uses {index})"
                    )
                if label.startswith("with "):
                    cursor.execute("DROP INDEX bench_probe_org")
            cursor.execute("DROP TABLE bench_probe_query")
            # usage_recordkey: the new organization's 200k keys not analyzed either.
            org = kept_org("bench-scale-probe")
            cursor.execute(f"DELETE FROM {KEYS} WHERE organization_id = %s", [org.pk])
            cursor.execute(f"ANALYZE {KEYS}")
            cursor.execute(
                f"INSERT INTO {KEYS} (organization_id, kind, client_id, at) "
                "SELECT %s, 'q', 'new' || n, now() FROM generate_series(1, 200000) AS n",
                [org.pk],
            )
            for form, sql in (
                (
                    "= ANY",
                    f"SELECT client_id FROM {KEYS} WHERE organization_id = %s "
                    "AND kind = 'q' AND client_id = ANY(%s::text[])",
                ),
                ("LATERAL LIMIT 1, what ingestion asks now", KEYS_PROBE),
            ):
                params: list[Any] = [org.pk, ids] if form == "= ANY" else [ids, org.pk, "q"]
                samples = []
                for _ in range(5):
                    cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
                    samples.append(cursor.fetchone()[0][0]["Execution Time"])
                self._say(
                    f"the same lookup against usage_recordkey ({form}): median "
                    f"{statistics.median(samples):.1f} ms"
                )

    # --- retention -------------------------------------------------------------------

    def _figures(self, org: Organization, start: datetime, end: datetime) -> dict:
        return {
            "jobs": jobs_overview(org=org, start=start, end=end),
            "queries": queries_by_model(org=org, start=start, end=end),
            "runtime": worker_runtime_by_model(org=org, start=start, end=end),
            "members": usage_by_member(org=org, start=start, end=end),
        }

    def _retention(self, total: int) -> None:
        month, end = month_back(4)
        self._say(f"\n== retention: {total:,} records in {month:%Y-%m} ==")
        org = kept_org(RETENTION_SLUG)
        days = (end - month).days
        started = time.monotonic()
        with connection.cursor() as cursor:
            for sql in _records_sql(org.pk, total, month, days * 86400, "r"):
                cursor.execute(sql)
            cursor.execute(f"ANALYZE {', '.join(TABLES.values())}")
        self._say(f"generated in {time.monotonic() - started:.1f} s")
        started = time.monotonic()
        for n in range(days):
            rollup_day(org=org, day=month.date() + timedelta(days=n))
        self._say(f"rolled up its {days} days in {time.monotonic() - started:.1f} s")
        before = self._figures(org, month, end)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class AS c "
                "WHERE c.relname = ANY(%s)",
                [[f"{table}_p{month:%Y_%m}" for table in TABLES.values()]],
            )
            (month_bytes,) = cursor.fetchone()
        self._say(
            f"the month's partitions: {month_bytes / 2**20:,.0f} MB with their indexes "
            f"({month_bytes / total:,.0f} bytes a record)"
        )
        verdicts = usage_retention_run(keep_months=3)
        for v in verdicts:
            if v.records and sum(v.records.values()):
                self._say(
                    f"{v.month:%Y-%m}: {sum(v.records.values()):,} records; checks "
                    f"{v.check_ms:.0f} ms; detach (locks the record tables) {v.detach_ms:.1f} ms, "
                    f"then drop of the detached tables {v.drop_ms:.1f} ms "
                    f"({'dropped' if v.dropped else 'kept: ' + '; '.join(v.reasons)})"
                )
        after = self._figures(org, month, end)
        runtime = sum((r.runtime for r in after["runtime"]), timedelta())
        self._say(
            f"page figures for {month:%Y-%m} unchanged after the drop: {before == after} "
            f"(jobs {after['jobs'].submitted:,}, queries "
            f"{sum(r.queries for r in after['queries']):,}, runtime "
            f"{runtime.total_seconds() / 3600:,.0f} h)"
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT pg_size_pretty(pg_total_relation_size('{KEYS}')), "
                f"(SELECT count(*) FROM {KEYS}), pg_total_relation_size('{KEYS}')"
            )
            size, keys, key_bytes = cursor.fetchone()
        self._say(
            f"usage_recordkey kept: {keys:,} keys, {size} with its index "
            f"({key_bytes / max(keys, 1):,.0f} bytes a key)"
        )
        rows = sum(m.objects.filter(organization=org).count() for m in DAILY_MODELS)
        self._say(f"rollup rows answering for the month: {rows:,}")

    # --- many tenants ----------------------------------------------------------------

    def _tenants(self, opts: dict) -> None:
        count, per_org = opts["orgs"], opts["org_records"]
        self._say(f"\n== {count:,} organizations x {per_org:,} records, one big one ingesting ==")
        started = time.monotonic()
        now = timezone.now()
        yesterday = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), UTC) - (
            timedelta(days=1)
        )
        span = (now - yesterday).total_seconds() - 3600
        for n in range(count):
            org = kept_org(f"{SMALL_PREFIX}{n}")
            if RECORD_MODELS["query"].objects.filter(organization=org).exists():
                continue  # seeded by an earlier run
            # Through ingestion, as a customer's records arrive: the buckets stay right.
            usage_records_ingest(org=org, records=_small_batch(n, per_org, yesterday, span))
        self._say(f"seeded in {time.monotonic() - started:.1f} s")
        big = kept_org(BIG_SLUG)
        rng = random.Random(1)  # noqa: S311 - which organizations to time
        sample = [kept_org(f"{SMALL_PREFIX}{n}") for n in rng.sample(range(count), min(count, 20))]
        self._sweeps("before the big one ingests (every small org's yesterday due)")
        quiet = self._panel_times(sample, opts["requests"])
        self._say(
            f"small orgs' usage panel, nobody ingesting: p50 {statistics.median(quiet):.0f} "
            f"ms p95 {_p(quiet, 0.95):.0f} ms"
        )
        ingest = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "manage.py",
                "bench_scale",
                "--ingest-for",
                big.slug,
                "--ingest-seconds",
                str(opts["ingest_seconds"]),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(3)
        busy = []
        while ingest.poll() is None:
            busy.extend(self._panel_times(sample, 1))
        out = ingest.stdout.read().strip() if ingest.stdout else ""
        self._say(f"big org: {out}")
        self._say(
            f"small orgs' usage panel while it ingests: p50 {statistics.median(busy):.0f} ms "
            f"p95 {_p(busy, 0.95):.0f} ms ({len(busy)} requests)"
        )

    def _panel_times(self, orgs: list[Organization], rounds: int) -> list[float]:
        times = []
        for _ in range(rounds):
            for org in orgs:
                client = Client(HTTP_HOST="localhost")
                client.force_login(User.objects.get(email=f"owner@{org.slug}.example"))
                url = reverse("usage:panel", args=[org.slug])
                started = time.perf_counter()
                assert client.get(url).status_code == 200
                times.append((time.perf_counter() - started) * 1000)
        return times

    def _sweeps(self, label: str) -> None:
        """The nightly (days) and hourly (hours) sweeps: what they enqueue, then every task
        they enqueue run here one after another."""
        for name, sweep, task in (
            ("nightly rollup sweep", rollup_sweep, rollup_org_run),
            ("hourly rollup sweep", rollup_hours_sweep, rollup_hours_org_run),
        ):
            calls = _Calls()
            with mock.patch.object(task, "delay", side_effect=calls):
                started = time.monotonic()
                due = sweep()
                enqueue_s = time.monotonic() - started
            durations = []
            started = time.monotonic()
            for args in calls:
                t0 = time.monotonic()
                task.apply(args=args).get()
                durations.append(time.monotonic() - t0)
            total = time.monotonic() - started
            self._say(
                f"{name} {label}: {due:,} due, {len(calls):,} tasks (one per organization) "
                f"enqueued in {enqueue_s * 1000:.0f} ms; all run one after another in "
                f"{total:.1f} s (per task p50 {statistics.median(durations or [0]) * 1000:.0f} ms"
                f", p95 {_p(durations or [0], 0.95) * 1000:.0f} ms)"
            )

    def _ingest_loop(self, slug: str, seconds: int) -> None:
        org = Organization.objects.get(slug=slug)  # its STARTING_CREDITS pay for the run
        deadline = time.monotonic() + seconds
        batches, records = 0, 0
        started = time.monotonic()
        run = int(time.time())
        while time.monotonic() < deadline:
            now = timezone.now().isoformat()
            batch = [
                _query(f"b{run}-{batches}-{n}", now, 100 + n, 50, f"u{n % 9}@big.example")
                for n in range(1000)
            ]
            result = usage_records_ingest(org=org, records=batch)
            records += len(result.accepted)
            batches += 1
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"{records:,} records in {batches} batches, {records / elapsed:,.0f} records/s"
        )


IGNORE_HELP = "internal: run the big organization's ingest loop"
