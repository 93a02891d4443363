"""manage.py bench_rollup: the rollup benchmark (PostgreSQL). Prints figures; not a test.

    manage.py bench_rollup --generate   # 10M records (COPY), a 10k-record organization
                                        # and two ledgers (100k, 1M rows) for the CSV
    manage.py bench_rollup              # backfill, rollup, page times, CSV memory
    manage.py bench_rollup --drop       # remove the benchmark organizations' rows

The large organization has 10 million records over 90 days (one of them holding 1
million), mostly queries; the small one the same mix scaled to 10 thousand. Both are
rolled up (days, then the open day's finished hours, as the beat leaves them), then the
usage panel (30-day default) and the main page are timed in-process through Django's
test client (server time, p50/p95; the two organizations' requests alternate), and the
transactions CSV is streamed at 100 thousand and 1 million rows while the process's RSS
is sampled. `--time-zone Pacific/Kiritimati` (UTC+14) puts the organizations in the
afternoon of their open day while UTC is just past midnight.
"""

# ruff: noqa: S608 (benchmark SQL, built from its own integers and the models' tables)

import io
import random
import resource
import statistics
import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from bench.orgs import kept_org, organizations_delete
from bench.product import (
    DAILY_MODELS,
    RECORD_MODELS,
    LedgerEntry,
    Organization,
    PriceModel,
    User,
    apikey_create,
    controller_register,
    project_create,
    project_default_for,
    rollup_day,
    rollup_hour,
    rollup_hours_due,
)

# The raw record tables by kind (the generator COPYs into them).
TABLES = {kind: model._meta.db_table for kind, model in RECORD_MODELS.items()}
# The time column that places each kind's record in a day (in RECORD_MODELS' order).
TIME_FIELDS = ("occurred_at", "submitted_at", "started_at", "started_at")
LARGE, SMALL = "bench-10m", "bench-10k"
# The CSV export reads the ledger: its own organizations, so the page timings above do
# not also pay for a million ledger rows.
CSV_LARGE, CSV_SMALL = "bench-csv-1m", "bench-csv-100k"
DAYS = 90
BIG_DAY_BACK = 7  # the day holding 1M records: a week ago
MEMBERS = [f"user{n}@bench.example" for n in range(12)]
ENDPOINTS = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"]


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


class _PeakRss:
    """Samples RSS every 5 ms in a thread; peak growth over the start."""

    def __enter__(self):
        self.start = self.peak = _rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())

    @property
    def growth(self) -> float:
        return self.peak - self.start


class Command(BaseCommand):
    help = "Rollup benchmark on PostgreSQL: generate, measure, drop (prints figures)."

    def add_arguments(self, parser):
        parser.add_argument("--generate", action="store_true")
        parser.add_argument("--records", type=int, default=10_000_000)
        parser.add_argument("--drop", action="store_true")
        parser.add_argument("--requests", type=int, default=30)
        parser.add_argument("--skip-backfill", action="store_true")
        parser.add_argument(
            "--time-zone",
            help="set both organizations' zone first (e.g. Pacific/Kiritimati, UTC+14, to "
            "time the pages in the afternoon of their open day while UTC is past midnight)",
        )

    def handle(self, *args, generate, records, drop, requests, skip_backfill, time_zone, **options):
        if connection.vendor != "postgresql":
            raise CommandError("the benchmark needs PostgreSQL (set DATABASE_URL)")
        if drop:
            self._drop()
            return
        if generate:
            self._generate(LARGE, records)
            self._generate(SMALL, max(records // 1000, 10_000))
            self._ledger(CSV_LARGE, 1_000_000)
            self._ledger(CSV_SMALL, 100_000)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            return
        if time_zone:
            Organization.objects.filter(slug__in=[LARGE, SMALL]).update(time_zone=time_zone)
        large = Organization.objects.get(slug=LARGE)
        small = Organization.objects.get(slug=SMALL)
        local = timezone.now().astimezone(ZoneInfo(large.time_zone or "UTC"))
        self._say(f"organizations' clock: {local:%Y-%m-%d %H:%M} ({large.time_zone})")
        self._partitioning_probe(large)
        if not skip_backfill:
            for org in (small, large):
                started = time.monotonic()
                call_command(
                    "rollup",
                    "--from",
                    str(self._first_day()),
                    "--to",
                    str(timezone.now().astimezone(UTC).date() - timedelta(days=1)),
                    "--org",
                    org.slug,
                    stdout=io.StringIO(),
                )
                self._say(f"backfill {org.slug}: {DAYS} days in {time.monotonic() - started:.1f} s")
        for org in (small, large):
            # What the hourly beat leaves: the open day's finished hours rolled up.
            started = time.monotonic()
            due = rollup_hours_due(org=org)
            for _org_id, day, hour in due:
                rollup_hour(org=org, day=day, hour=hour)
            self._say(
                f"hours {org.slug}: {len(due)} finished hours rolled up in "
                f"{time.monotonic() - started:.1f} s"
            )
        self._rollup_big_day(large)
        with connection.cursor() as cursor:
            # What autovacuum does after the backfill: without fresh statistics on the
            # rollup and bucket tables the planner may read one project's rows through
            # an index scan over all of its buckets (measured: the one-project panel at
            # p95 ratio 2.65 at 1M records before this, ~1 after).
            cursor.execute("ANALYZE")
        self._pages(small, large, requests)
        self._csv(
            Organization.objects.get(slug=CSV_SMALL), Organization.objects.get(slug=CSV_LARGE)
        )

    # --- output -----------------------------------------------------------------------

    def _say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()

    def _first_day(self) -> date:
        return timezone.now().astimezone(UTC).date() - timedelta(days=DAYS - 1)

    # --- data -------------------------------------------------------------------------

    def _generate(self, slug: str, total: int) -> None:
        """COPY `total` records for the organization: 90% queries, 8% jobs, 1% worker
        sessions, 1% matching runs, over 90 days (1/10 of them on one day)."""
        org = kept_org(slug)
        if RECORD_MODELS["query"].objects.filter(organization=org).exists():
            self._say(f"{slug}: records exist, not generating")
            return
        # Three projects (the Default one and two more), keys and controllers spread over
        # them: a record's project is its key's, else its controller's, else the Default.
        projects = [project_default_for(org=org)]
        projects += [project_create(org=org, name=f"Bench {n}") for n in (1, 2)]
        keys = [
            apikey_create(org=org, name=f"key {n}", project=projects[n % 3]).key for n in range(4)
        ]
        controllers = [
            controller_register(
                org=org, name=f"node-{n}", cores=64, memory_gb=256, project=projects[n % 3]
            ).controller
            for n in range(3)
        ]
        project_of = {k.pk: k.project_id for k in keys} | {None: projects[0].pk}
        project_of_ctl = {c.pk: c.project_id for c in controllers}
        models = list(PriceModel.objects.filter(is_active=True).values_list("pk", flat=True))
        rng = random.Random(slug)  # noqa: S311 - benchmark data
        now = timezone.now()
        today_start = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), UTC)
        first = today_start - timedelta(days=DAYS - 1)
        big_day = today_start - timedelta(days=BIG_DAY_BACK)
        started = time.monotonic()
        key_ids = [k.pk for k in keys] + [None]
        ctl_ids = [c.pk for c in controllers] + [None, None]

        def moment() -> datetime:
            if rng.random() < 0.1:
                return big_day + timedelta(seconds=rng.random() * 86400)
            span = (now - first).total_seconds()
            at = first + timedelta(seconds=rng.random() * span)
            return at if not big_day <= at < big_day + timedelta(days=1) else at - timedelta(days=1)

        # Per kind: its columns after the common ones, and a row's values for them with
        # its key and credits first.
        def query() -> list:
            i, o = rng.randint(10, 2000), rng.randint(0, 800)
            at, endpoint, member = moment(), rng.choice(ENDPOINTS), rng.choice(MEMBERS)
            credits = f"{(i + o) / 1e6:.10f}"
            key = rng.choice(key_ids)
            return [
                key,
                credits,
                project_of[key],
                rng.choice(models),
                at,
                i,
                o,
                i + o,
                endpoint,
                member,
            ]

        def job() -> list:
            at = moment()
            status = rng.choices(["completed", "failed", "cancelled", "running"], [88, 6, 4, 2])
            hours = Decimal(rng.randint(1, 64)) / 2 if status[0] != "running" else 0
            end = None if status[0] == "running" else at + timedelta(minutes=30)
            credits, controller = hours * Decimal("0.12"), rng.choice(ctl_ids)
            key = rng.choice(key_ids)
            project = project_of[key] if key or not controller else project_of_ctl[controller]
            return [
                key,
                credits,
                project,
                status[0],
                8,
                controller,
                at,
                at,
                end,
                hours,
                "",
                now,
            ]

        def session() -> list:
            at = moment()
            end = min(at + timedelta(seconds=rng.randint(60, 6 * 3600)), now)
            runtime = f"{(end - at).total_seconds():.3f}"
            key = rng.choice(key_ids)
            return [key, 0, project_of[key], rng.choice(models), at, end, runtime]

        def matching() -> list:
            at = min(moment(), now - timedelta(minutes=2))
            task, size = rng.choice(["IDR", "CDM"]), rng.randint(100, 100000)
            return [None, 0, projects[0].pk, task, size, at, at + timedelta(minutes=1), "60.000"]

        kinds = (
            ("query", int(total * 0.90), query, "model_id, occurred_at, input_tokens, "
             "output_tokens, total_tokens, endpoint, member"),
            ("job", int(total * 0.08), job, "status, cores, controller_id, submitted_at, "
             "started_at, ended_at, core_hours, charge_reference, updated_at"),
            ("worker_session", int(total * 0.01), session, "model_id, started_at, ended_at, "
             "runtime_seconds"),
            ("matching", total - int(total * 0.90) - int(total * 0.08) - int(total * 0.01),
             matching, "task, num_records, started_at, ended_at, run_time_seconds"),
        )  # fmt: skip
        with connection.cursor() as cursor:
            for kind, count, row, columns in kinds:
                columns = (
                    f"organization_id, client_id, api_key_id, credits, project_id, {columns}, "
                    "created_at"
                )
                with cursor.cursor.copy(f"COPY {TABLES[kind]} ({columns}) FROM STDIN") as copy:
                    for n in range(count):
                        copy.write_row([org.pk, f"{kind[0]}{n}", *row(), now])
        self._say(f"generated {total:,} records for {slug} in {time.monotonic() - started:.1f} s")

    def _ledger(self, slug: str, rows: int) -> None:
        """COPY `rows` usage debits into the organization's ledger (the CSV export's input)."""
        org = kept_org(slug)
        if LedgerEntry.objects.filter(organization=org, idempotency_key="bench:0").exists():
            return
        now = timezone.now()
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(
                f"COPY {LedgerEntry._meta.db_table} (organization_id, kind, amount, "
                "balance_after, reason, idempotency_key, reference, model_name, created_at) "
                "FROM STDIN"
            ) as copy,
        ):
            for n in range(rows):
                at = (now - timedelta(seconds=rows - n)).isoformat()
                copy.write(
                    f"{org.pk}\tusage\t-0.0100000000\t{-0.01 * (n + 1):.10f}\tUsage: 12 records\t"
                    f"bench:{n}\tusage-batch:{n}\tllama-3.1-8b\t{at}\n"
                )

    def _drop(self) -> None:
        for slug in (LARGE, SMALL, CSV_LARGE, CSV_SMALL):
            org = Organization.objects.filter(slug=slug).first()
            if org is not None:
                organizations_delete([org])
                self._say(f"dropped {slug}")
        with connection.cursor() as cursor:
            cursor.execute("VACUUM")

    # --- measurements -----------------------------------------------------------------

    def _partitioning_probe(self, org: Organization) -> None:
        """What the open day costs through the (organization, time) index at this size."""
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT count(*) FROM {TABLES['query']} WHERE organization_id = %s", [org.pk]
            )
            (records,) = cursor.fetchone()
            today = datetime.combine(
                timezone.now().astimezone(UTC).date(), datetime.min.time(), UTC
            )
            samples = []
            for _ in range(5):
                started = time.perf_counter()
                cursor.execute(
                    f"SELECT model_id, count(*), sum(total_tokens) FROM {TABLES['query']} "
                    "WHERE organization_id = %s AND occurred_at >= %s GROUP BY model_id",
                    [org.pk, today],
                )
                cursor.fetchall()
                samples.append(time.perf_counter() - started)
            cursor.execute(f"SELECT pg_size_pretty(pg_total_relation_size('{TABLES['query']}'))")
            (size,) = cursor.fetchone()
        self._say(
            f"partitioning probe: {records:,} queries ({size} with indexes); the open day's "
            f"aggregate via the index: median {statistics.median(samples) * 1000:.1f} ms"
        )

    def _rollup_big_day(self, org: Organization) -> None:
        day = timezone.now().astimezone(UTC).date() - timedelta(days=BIG_DAY_BACK)
        lo = datetime.combine(day, datetime.min.time(), UTC)
        hi = lo + timedelta(days=1)
        records = sum(
            model.objects.filter(
                organization=org, **{f"{field}__gte": lo, f"{field}__lt": hi}
            ).count()
            for model, field in zip(RECORD_MODELS.values(), TIME_FIELDS, strict=True)
        )

        def snapshot():
            """Every daily rollup row of the day: its dimensions and figures."""
            return {
                model: sorted(
                    model.objects.filter(organization=org, day=day).values_list(
                        *(f.attname for f in model._meta.concrete_fields if not f.primary_key)
                    ),
                    key=repr,
                )
                for model in DAILY_MODELS
            }

        timings = []
        for _ in range(2):
            before = snapshot()
            started = time.monotonic()
            result = rollup_day(org=org, day=day)
            timings.append(time.monotonic() - started)
            after = snapshot()
        changed = sum(len(set(before[k]) ^ set(after[k])) for k in before)
        self._say(
            f"rollup of {day} ({records:,} records, {result.rows} rollup rows): "
            f"first {timings[0]:.2f} s, second {timings[1]:.2f} s; second run changed "
            f"{changed} rows, {result.restatements} restatements (target < 15 s)"
        )

    def _time_pages(
        self, orgs: list[Organization], requests: int
    ) -> dict[str, dict[str, tuple[float, float]]]:
        """p50/p95 server time per organization and page; the organizations' requests
        alternate, so a load spike from elsewhere on the machine hits both alike."""
        clients = {}
        for org in orgs:
            client = Client(HTTP_HOST="localhost")
            client.force_login(User.objects.get(email=f"owner@{org.slug}.example"))
            clients[org.slug] = client
        now = timezone.now()
        year = {
            "start": (now - timedelta(days=365)).strftime("%Y-%m-%dT%H:%M"),
            "end": now.strftime("%Y-%m-%dT%H:%M"),
            "bucket": "1d",
            "metric": "credits",
            "group_by": "model",
        }
        # One project: the busiest non-Default one (a third of the keys' records).
        one = {org.slug: f"?project={self._bench_project(org)}" for org in orgs}
        pages = {
            "usage panel (30 days)": ("usage:panel", ""),
            "usage panel (30 days), one project": ("usage:panel", one),
            "main page": ("main", ""),
            "main page, one project": ("main", one),
            # Usage → Explore over a year by day, credits by model (target p95 < 300 ms).
            "explorer (a year by day, by model)": ("usage:explore", "?" + urlencode(year)),
        }
        out: dict[str, dict[str, tuple[float, float]]] = {org.slug: {} for org in orgs}
        for name, (view, query) in pages.items():
            urls = {
                org.slug: reverse(view, args=[org.slug])
                + (query[org.slug] if isinstance(query, dict) else query)
                for org in orgs
            }
            for org in orgs:
                for _ in range(3):
                    assert clients[org.slug].get(urls[org.slug]).status_code == 200
            samples: dict[str, list[float]] = {org.slug: [] for org in orgs}
            for _ in range(requests):
                for org in orgs:
                    started = time.perf_counter()
                    response = clients[org.slug].get(urls[org.slug])
                    samples[org.slug].append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200
            for slug, times in samples.items():
                times.sort()
                p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
                out[slug][name] = (statistics.median(times), p95)
        return out

    def _bench_project(self, org: Organization) -> int:
        return org.projects.get(name="Bench 1").pk

    def _pages(self, small: Organization, large: Organization, requests: int) -> None:
        counts = {}
        for org in (small, large):
            counts[org.slug] = sum(
                m.objects.filter(organization=org).count() for m in RECORD_MODELS.values()
            )
        results = self._time_pages([small, large], requests)
        for page in results[SMALL]:
            s50, s95 = results[SMALL][page]
            l50, l95 = results[LARGE][page]
            self._say(
                f"{page}: {counts[SMALL]:,} records p50 {s50:.1f} ms p95 {s95:.1f} ms | "
                f"{counts[LARGE]:,} records p50 {l50:.1f} ms p95 {l95:.1f} ms | "
                f"p95 ratio {l95 / s95:.2f} (target <= 2)"
            )

    def _csv(self, small: Organization, large: Organization) -> None:
        figures = {}
        for org in (small, large):
            client = Client(HTTP_HOST="localhost")
            client.force_login(User.objects.get(email=f"owner@{org.slug}.example"))
            url = reverse("billing:transactions_csv", args=[org.slug])
            client.get(url)  # warm up: imports, templates, connection
            rows = 0
            with _PeakRss() as peak:
                started = time.monotonic()
                response = client.get(url)
                for chunk in response.streaming_content:  # type: ignore[attr-defined]
                    rows += chunk.count(b"\n")
            figures[org.slug] = (rows - 1, peak.growth, time.monotonic() - started)
        (small_rows, small_mb, small_s), (large_rows, large_mb, large_s) = figures.values()
        self._say(
            f"transactions CSV: {small_rows:,} rows peak RSS growth {small_mb:.1f} MB "
            f"({small_s:.1f} s) | {large_rows:,} rows {large_mb:.1f} MB ({large_s:.1f} s) | "
            f"difference {large_mb - small_mb:.1f} MB (targets < 50 MB, within 10 MB)"
        )
