"""Benchmark the production stack: usage ingestion and pages at once, over real HTTP.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python manage.py bench_serve [--seconds 30]

It starts the stack as deployed (bench/stack.py: gunicorn with console/gunicorn.conf.py
and DEBUG=0, a Celery worker, PostgreSQL, Redis) and makes an enterprise organization
with a funded account, an API key and an owner who logs in. The key's own rate limits
are set high (the tier's defaults are left alone), so the benchmark measures the server
rather than the limiter.

Then: readers alone load the main page and the usage panel (pages idle); for --seconds,
--writers clients post 1,000-record batches of new records (mostly queries, some jobs,
worker sessions and matching runs) while the readers go on (pages under load); then a
raw COPY of the same rows into the same tables, on one connection, gives the yardstick.
Afterwards it checks that the records stored are exactly the records sent, that the
ledger's usage debits equal their prices computed here from the price list, and that
`manage.py reconcile` finds nothing; then deletes its organizations.
"""

from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from bench import load, verify
from bench.orgs import BenchOrg, bench_org, organizations_delete, run_stamp
from bench.product import RECORD_MODELS
from bench.records import PriceList, copy_rate, day_batches
from bench.stack import Stack, services_required

MS = 1000


def pages_line(name: str, log: load.ReaderLog, note: str = "") -> str:
    """`name: p50 .. ms, p95 .. ms (n pages...)`, the way every page figure is printed."""
    p50, p95 = load.percentile(log.latencies, 0.5), load.percentile(log.latencies, 0.95)
    return (
        f"{name + ':':<21}p50 {p50 * MS:.0f} ms, p95 {p95 * MS:.0f} ms "
        f"({len(log.latencies)} pages{note})"
    )


class Command(BaseCommand):
    help = "Benchmark ingestion and pages at once through gunicorn, Celery, PostgreSQL and Redis."

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=30, help="length of the load")
        parser.add_argument("--writers", type=int, default=4, help="clients posting batches")
        parser.add_argument("--readers", type=int, default=2, help="logged-in page readers")
        parser.add_argument(
            "--reader-pause",
            type=float,
            default=1.0,
            help="seconds a reader waits between two pages (a person clicking around)",
        )
        parser.add_argument("--idle-seconds", type=float, default=8, help="pages before load")
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="gunicorn workers (default: GUNICORN_WORKERS, else the config's 2 × cores + 1)",
        )
        parser.add_argument("--copy-batches", type=int, default=30, help="batches COPYed raw")
        parser.add_argument("--keep", action="store_true", help="keep the organizations")

    def handle(self, *args, **opts):
        services_required("bench_serve")
        settings.DEBUG = False  # no query log growing in this process
        stamp = run_stamp()
        setup = bench_org(stamp)
        copy_setup = bench_org(f"{stamp}c")
        try:
            report = self._run(stamp, setup, opts)
            self._print_figures(report, opts)
            if opts["copy_batches"] > 0:
                templates = report["templates"]
                batches = [
                    templates[n % len(templates)].filled(f"copy{n}")
                    for n in range(opts["copy_batches"])
                ]
                self._print_copy(report, copy_rate(copy_setup, batches))
            problems = self._verify(setup, report)
        finally:
            if not opts["keep"]:
                organizations_delete([setup.org, copy_setup.org])
                self._vacuum()
        if problems:
            raise CommandError("verification failed: " + "; ".join(problems))

    # --- The run --------------------------------------------------------------------------

    def _run(self, stamp: str, setup: BenchOrg, opts: dict) -> dict:
        prices = PriceList()
        templates = load.templates(day_batches(opts["batch_size"], 8), prices.credits)
        slug = setup.org.slug
        with Stack("serve", workers=opts["workers"]) as stack:
            self.stdout.write(f"Stack: {stack.describe()}")
            readers = {
                "port": stack.port,
                "paths": [f"/o/{slug}/", f"/o/{slug}/usage/"],
                "pause": opts["reader_pause"],
                # Each reader logs in once, as a person does, and keeps the session.
                "sessions": [
                    load.session(stack.port, setup.email, setup.password)
                    for _ in range(max(opts["readers"], 1))
                ],
            }
            warm = self._warm_up(stack, setup, readers, prices)
            idle = load.Readers(**readers).run_for(opts["idle_seconds"])
            readers["sessions"] = readers["sessions"][: opts["readers"]]
            with load.Readers(**readers) as loaded:
                log, elapsed = load.writers_run(
                    port=stack.port,
                    secret=setup.secret,
                    templates=templates,
                    run=f"r{stamp[-6:]}",
                    writers=opts["writers"],
                    seconds=opts["seconds"],
                )
            # The same pages on the data the load left (what the records alone cost them).
            after = load.Readers(**readers).run_for(opts["idle_seconds"])
        return {
            "templates": templates,
            "runs": [(templates, log), warm],
            "idle": idle,
            "loaded": loaded.log,
            "after": after,
            "writers": log,
            "elapsed": elapsed,
        }

    def _warm_up(self, stack: Stack, setup: BenchOrg, readers: dict, prices: PriceList):
        """Every worker imports its views and opens its connections before the timings:
        a few small batches (counted with the others) and pages."""
        client = load.Client(stack.port)
        client.cookies = readers["sessions"][0]
        for path in readers["paths"] * stack.workers:
            client.request("GET", path)
        client.close()
        template = load.templates(day_batches(10, 1, seed=8), prices.credits)
        log, _ = load.writers_run(
            port=stack.port, secret=setup.secret, templates=template, run="warm", writers=1,
            seconds=1.0,
        )  # fmt: skip
        return template, log

    # --- Figures --------------------------------------------------------------------------

    def _print_figures(self, report: dict, opts: dict) -> None:
        log: load.WriterLog = report["writers"]
        report["rate"] = rate = log.accepted / report["elapsed"] if report["elapsed"] else 0.0
        latencies = [b.latency for b in log.sent]
        idle95 = load.percentile(report["idle"].latencies, 0.95)
        loaded95 = load.percentile(report["loaded"].latencies, 0.95)
        after95 = load.percentile(report["after"].latencies, 0.95)
        self.stdout.write(
            f"Load: {opts['writers']} writers posting {opts['batch_size']:,}-record batches, "
            f"{opts['readers']} readers (main page and usage panel, {opts['reader_pause']} s "
            f"between pages), {report['elapsed']:.1f} s"
        )
        self.stdout.write(
            f"records/s accepted:  {rate:,.0f} ({len(log.sent)} batches, {log.accepted:,} records)"
        )
        self.stdout.write(
            f"batch latency:       p50 {load.percentile(latencies, 0.5) * MS:.0f} ms, "
            f"p95 {load.percentile(latencies, 0.95) * MS:.0f} ms"
        )
        self.stdout.write(pages_line("pages idle", report["idle"]))
        self.stdout.write(
            pages_line("pages under load", report["loaded"])
            + f"; p95 under load / idle: {loaded95 / idle95 if idle95 else 0:.2f}"
        )
        self.stdout.write(
            pages_line("pages idle after", report["after"], ", on the data the load left")
            + f"; p95 under load / idle after: {loaded95 / after95 if after95 else 0:.2f}"
        )
        errors = log.errors + [e for k in ("idle", "loaded", "after") for e in report[k].errors]
        for error in errors[:10]:
            self.stdout.write(f"error: {error}")
        if errors:
            self.stdout.write(f"errors: {len(errors)} (retried batches count once)")

    def _print_copy(self, report: dict, rate: float) -> None:
        self.stdout.write(
            f"raw COPY:            {rate:,.0f} records/s (same rows, same tables, one "
            f"connection); HTTP / COPY: {report['rate'] / rate:.2f}"
        )

    # --- Verification ---------------------------------------------------------------------

    def _verify(self, setup: BenchOrg, report: dict) -> list[str]:
        expected: dict[str, set[str]] = {kind: set() for kind in RECORD_MODELS}
        charged = Decimal(0)
        for templates, log in report["runs"]:
            for batch in log.sent:
                template = templates[batch.template]
                charged += template.credits
                for r in template.filled(batch.prefix):
                    expected[r["kind"]].add(r["id"])
        problems = self._verify_records(setup, expected)
        problems += verify.money_matches(setup, self.stdout.write, charged=charged)
        problems += verify.reconcile_clean(setup, self.stdout.write)
        return problems

    def _verify_records(self, setup: BenchOrg, expected: dict[str, set[str]]) -> list[str]:
        sent = stored = missing = unexpected = 0
        for kind, ids in expected.items():
            rows = list(
                RECORD_MODELS[kind]
                .objects.filter(organization=setup.org)
                .values_list("client_id", flat=True)
            )
            have = set(rows)
            sent += len(ids)
            stored += len(rows)
            missing += len(ids - have)
            unexpected += len(have - ids) + (len(rows) - len(have))
        ok = sent == stored and not missing and not unexpected
        self.stdout.write(
            f"verify records:      sent {sent:,}, stored {stored:,}, missing {missing}, "
            f"unexpected or duplicated {unexpected}: {'OK' if ok else 'FAILED'}"
        )
        return [] if ok else [f"records: {missing} missing, {unexpected} unexpected"]

    def _vacuum(self) -> None:
        # This server's tables carry the benchmark's dead rows until vacuumed; with
        # autovacuum on (the default) this only comes early.
        tables = [m._meta.db_table for m in RECORD_MODELS.values()]
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {', '.join(tables)}")
