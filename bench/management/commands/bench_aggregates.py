"""Benchmark the bucket aggregates through the real server, printing in one run:

    DATABASE_URL=postgres://... REDIS_URL=redis://... python manage.py bench_aggregates

1. Pages against the open hour's size: two enterprise organizations, one with
   --small (1,000) records in its open hour, one with --big (1,000,000), written by the
   ingestion service in 1,000-record batches (the usual mix: 70% queries, 15% jobs, 10%
   worker sessions, 5% matching runs; times in the last 50 minutes, sessions up to an
   hour long). gunicorn (production config) then serves each organization's usage panel
   and main page --samples times in turn to one logged-in reader: p50/p95 per page and
   the big/small ratio. With --compare-raw the server is restarted with the aggregates
   off (USAGE_BUCKETS=off: the open hour read from the records, as before them) and the
   big organization's pages are timed again.
2. Ingestion cost: --writers clients post 1,000-record batches over HTTP for --seconds,
   with the aggregates off and on in alternation (--rounds of each, a fresh server each
   time, one organization seeded with 20,000 records and analyzed first), for the
   streaming mix (records of the last minutes) and bench_serve's mix (records spread over
   a day two days back: about one bucket per record, the worst case for the upserts).
   Records/s accepted per round, the medians, and on/off.

Nothing else is verified here (bench_serve verifies records, ledger and reconcile with
the aggregates on); the organizations are deleted afterwards unless --keep.
"""

import random
import statistics
import time
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from bench import load
from bench.orgs import BenchOrg, bench_org, organizations_delete, run_stamp
from bench.product import usage_records_ingest
from bench.records import day_batches, records_mix
from bench.stack import Stack, services_required


def stream_batches(size: int, count: int) -> list[list[dict]]:
    """The streaming mix: records of the last 5 minutes, every one ended by now."""
    rng = random.Random(5)  # noqa: S311 - benchmark data
    now = timezone.now()
    lo = now - timedelta(minutes=5)
    return [records_mix(rng, load.PLACEHOLDER, size, lo, now, end_by_hi=True) for _ in range(count)]


class Command(BaseCommand):
    help = "Benchmark the bucket aggregates: pages against the open hour's size, ingestion cost."

    def add_arguments(self, parser):
        parser.add_argument("--small", type=int, default=1_000)
        parser.add_argument("--big", type=int, default=1_000_000)
        parser.add_argument("--samples", type=int, default=100, help="loads of each page")
        parser.add_argument("--compare-raw", action="store_true")
        parser.add_argument("--seconds", type=float, default=20, help="each ingestion round")
        parser.add_argument("--rounds", type=int, default=2, help="ingestion rounds on and off")
        parser.add_argument("--writers", type=int, default=4)
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--workers", type=int, default=None)
        parser.add_argument("--skip-pages", action="store_true")
        parser.add_argument("--skip-ingest", action="store_true")
        parser.add_argument("--keep", action="store_true")

    def handle(self, *args, **opts):
        services_required("bench_aggregates")
        settings.DEBUG = False
        orgs: list[BenchOrg] = []
        try:
            if not opts["skip_pages"]:
                self._pages_phase(opts, orgs)
            if not opts["skip_ingest"]:
                self._ingest_phase(opts, orgs)
        finally:
            if not opts["keep"]:
                organizations_delete([o.org for o in orgs])

    # --- 1. Pages against the open hour's size -----------------------------------------

    def _seed(self, setup: BenchOrg, count: int, stamp: str) -> float:
        """`count` records in the last 50 minutes, in 1,000-record batches through the
        ingestion service (its aggregates included); returns records/s."""
        rng = random.Random(11)  # noqa: S311 - benchmark data
        now = timezone.now()
        lo, hi = now - timedelta(minutes=50), now - timedelta(seconds=5)
        started = time.monotonic()
        done, n = 0, 0
        while done < count:
            size = min(1000, count - done)
            records = records_mix(rng, f"{stamp}s{n}", size, lo, hi, end_by_hi=True)
            result = usage_records_ingest(org=setup.org, records=records, api_key=setup.key)
            if result.rejected:
                raise CommandError(f"seed rejected: {result.rejected[:3]}")
            done += size
            n += 1
            if n in (20, 100, 300):
                # The new organization's rows are not in the statistics yet (autoanalyze
                # lags on a busy machine), and the replay lookup then probes the
                # organization's foreign-key index filtering every row (seconds a batch).
                with connection.cursor() as cursor:
                    cursor.execute("ANALYZE usage_query, usage_job, usage_workersession")
            if n % 100 == 0:
                self.stdout.write(f"  seeded {done:,} of {count:,}")
        connection.close()  # the server's connections see the committed rows
        return count / (time.monotonic() - started)

    def _page_times(self, port: int, setup: BenchOrg, samples: int) -> dict[str, list[float]]:
        client = load.Client(port)
        client.cookies = load.session(port, setup.email, setup.password)
        slug = setup.org.slug
        paths = {"main page": f"/o/{slug}/", "usage panel": f"/o/{slug}/usage/"}
        times: dict[str, list[float]] = {name: [] for name in paths}
        for name, path in paths.items():  # warm: every worker's first request is dearer
            for _ in range(3):
                client.request("GET", path)
            for _ in range(samples):
                started = time.monotonic()
                status, _ = client.request("GET", path)
                if status != 200:
                    raise CommandError(f"{path}: HTTP {status}")
                times[name].append(time.monotonic() - started)
        client.close()
        return times

    def _with_stack(self, opts: dict, env: dict[str, str], run):
        """`run(port)` against a stack of its own, with `env` added to its environment."""
        with Stack("aggregates", workers=opts["workers"], env=env) as stack:
            return run(stack.port)

    def _pages_phase(self, opts: dict, orgs: list) -> None:
        stamp = run_stamp()
        small = bench_org(f"{stamp}a")
        big = bench_org(f"{stamp}b")
        orgs.extend([small, big])
        self.stdout.write(f"Seeding {opts['small']:,} and {opts['big']:,} records in the open hour")
        rate_small = self._seed(small, opts["small"], f"{stamp}a")
        rate_big = self._seed(big, opts["big"], f"{stamp}b")
        self.stdout.write(
            f"  seeded through the ingestion service: {rate_big:,.0f} records/s (big), "
            f"{rate_small:,.0f} (small)"
        )

        def measure(port):
            return {
                "small": self._page_times(port, small, opts["samples"]),
                "big": self._page_times(port, big, opts["samples"]),
            }

        timed = self._with_stack(opts, {}, measure)
        ms = 1000
        self.stdout.write(
            f"Pages, aggregates on (gunicorn, one reader, {opts['samples']} loads each):"
        )
        for page in ("usage panel", "main page"):
            s95 = load.percentile(timed["small"][page], 0.95)
            b95 = load.percentile(timed["big"][page], 0.95)
            self.stdout.write(
                f"  {page:12} {opts['small']:>9,} records: p50 "
                f"{statistics.median(timed['small'][page]) * ms:.0f} ms, p95 {s95 * ms:.0f} ms; "
                f"{opts['big']:,}: p50 {statistics.median(timed['big'][page]) * ms:.0f} ms, "
                f"p95 {b95 * ms:.0f} ms; ratio p95 {b95 / s95:.2f}"
            )
        if opts["compare_raw"]:
            raw = self._with_stack(
                opts,
                {"USAGE_BUCKETS": "off"},
                lambda port: self._page_times(port, big, max(opts["samples"] // 4, 5)),
            )
            for page in ("usage panel", "main page"):
                self.stdout.write(
                    f"  {page:12} aggregates off (open hour read raw), {opts['big']:,} records: "
                    f"p50 {statistics.median(raw[page]) * ms:.0f} ms, "
                    f"p95 {load.percentile(raw[page], 0.95) * ms:.0f} ms"
                )

    # --- 2. Ingestion cost -----------------------------------------------------------------

    def _ingest_round(self, port: int, setup: BenchOrg, templates, opts: dict, run: str) -> float:
        common = {"port": port, "secret": setup.secret, "templates": templates}
        load.writers_run(**common, run=f"{run}warm", writers=1, seconds=1.0)  # every worker
        log, elapsed = load.writers_run(
            **common, run=run, writers=opts["writers"], seconds=opts["seconds"]
        )
        if log.errors:
            raise CommandError(f"writers failed: {log.errors[:3]}")
        return log.accepted / elapsed

    def _ingest_phase(self, opts: dict, orgs: list) -> None:
        stamp = run_stamp()
        self.stdout.write(
            f"Ingestion over HTTP: {opts['writers']} writers, {opts['batch_size']:,}-record "
            f"batches, {opts['seconds']:.0f} s a round, aggregates off and on alternately"
        )
        for mix, batches in (
            ("streaming (records of the last 5 minutes)", stream_batches),
            ("bench_serve's (a day, two days back)", day_batches),
        ):
            built = load.templates(batches(opts["batch_size"], 8))
            rates: dict[str, list[float]] = {"off": [], "on": []}
            # One organization for every round, known to the planner's statistics first
            # (a new one's replay lookups take the wrong index until analyzed).
            setup = bench_org(f"{stamp}{mix[:2]}")
            orgs.append(setup)
            self._seed(setup, 20_000, f"{stamp}{mix[:2]}")
            for n in range(opts["rounds"]):
                for state in ("off", "on"):
                    rate = self._with_stack(
                        opts,
                        {"USAGE_BUCKETS": state},
                        lambda port, s=setup, st=state, k=n, b=built: self._ingest_round(
                            port, s, b, opts, f"i{k}{st}"
                        ),
                    )
                    rates[state].append(rate)
                    self.stdout.write(f"  {mix}: round {n + 1}, aggregates {state}: {rate:,.0f}/s")
            off, on = statistics.median(rates["off"]), statistics.median(rates["on"])
            self.stdout.write(
                f"  {mix}: median off {off:,.0f} records/s, on {on:,.0f} records/s; "
                f"cost {100 * (1 - on / off):.1f}%"
            )
