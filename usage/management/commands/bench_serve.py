"""Benchmark the production stack: usage ingestion and pages at once, over real HTTP.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python manage.py bench_serve [--seconds 30]

It starts gunicorn with the repo's config (console/gunicorn.conf.py, DEBUG=0) on a free
loopback port and a Celery worker, against PostgreSQL and Redis, and makes an enterprise
organization with a funded account, an API key and an owner who logs in. The key's own
rate limits are set high (the tier's defaults are left alone), so the benchmark measures
the server rather than the limiter.

Then: readers alone load the main page and the usage panel (pages idle); for --seconds,
--writers clients post 1,000-record batches of new records (mostly queries, some jobs,
worker sessions and matching runs) while the readers go on (pages under load); then a
raw COPY of the same rows into the same tables, on one connection, gives the yardstick.
Afterwards it checks that the records stored are exactly the records sent, that the
ledger's usage debits equal their prices computed here from the price list, and that
`manage.py reconcile` finds nothing; then deletes its organizations.
"""

import io
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import AuditEvent, Organization, Tier, User
from accounts.services import apikey_create, organization_create
from billing.models import CoreHourRate, CreditAccount, EntryKind, LedgerEntry, PriceModel
from billing.services import organization_grant_starting_credits
from rollups.services.aggregates import BUCKET_TABLES
from usage.management.commands import _serve_load as load
from usage.management.commands.bench_ingest import make_batch
from usage.models import Controller, IngestBatch, Job, MatchingRun, Query, WorkerSession
from usage.services.controllers import controller_register

STARTING_CREDITS = Decimal("1000000000")
_MODELS = {"query": Query, "job": Job, "worker_session": WorkerSession, "matching": MatchingRun}
_TEN_PLACES = Decimal("1e-10")
_SIX_PLACES = Decimal("1e-6")


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
        self._require_services()
        settings.DEBUG = False  # no query log growing in this process
        stamp = timezone.now().strftime("%Y%m%d%H%M%S") + secrets.token_hex(2)
        setup = self._organization(stamp)
        copy_setup = self._organization(f"{stamp}c", owner=False)
        try:
            report = self._run(stamp, setup, opts)
            copy_rate = self._copy_rate(copy_setup, report["templates"], opts["copy_batches"])
            self._print_figures(report, copy_rate, opts)
            problems = self._verify(setup, report)
        finally:
            if not opts["keep"]:
                self._clean([setup["org"], copy_setup["org"]])
        if problems:
            raise CommandError("verification failed: " + "; ".join(problems))

    # --- Set-up ---------------------------------------------------------------------------

    def _require_services(self) -> None:
        if connection.vendor != "postgresql":
            raise CommandError(
                "bench_serve measures the production stack: set DATABASE_URL to a PostgreSQL "
                "database (it refuses SQLite, whose one writer at a time is not what "
                "production runs)."
            )
        if not os.environ.get("REDIS_URL"):
            raise CommandError(
                "bench_serve needs Redis (the cache, the rate limiter's counters and the "
                "Celery broker): set REDIS_URL, e.g. redis://127.0.0.1:6379/0."
            )

    def _organization(self, stamp: str, *, owner: bool = True) -> dict:
        """An enterprise organization with credits, a controller and an API key whose own
        limits are high enough that the benchmark is never throttled."""
        password = secrets.token_urlsafe(12)
        with transaction.atomic():
            new = organization_create(
                name=f"Bench {stamp}",
                tier=Tier.ENTERPRISE,
                owner_email=f"bench-{stamp}@bench.example",
                owner_password=password,
                slug=f"bench-{stamp}",
            )
            org = new.organization
            organization_grant_starting_credits(org=org, amount=STARTING_CREDITS)
            controller = controller_register(org=org, name="bench-ctl", cores=64, memory_gb=256)
            issued = apikey_create(org=org, name="Benchmark", created_by=new.owner)
            issued.key.rate_limit_rpm, issued.key.rate_limit_tpm = 10**9, 10**15
            issued.key.save(update_fields=["rate_limit_rpm", "rate_limit_tpm"])
        return {
            "org": org,
            "owner": new.owner,
            "email": new.owner.email,
            "password": password,
            "key": issued.key,
            "secret": issued.secret,
            "controller": controller.controller,
        }

    def _templates(self, size: int, count: int = 8) -> list[load.Template]:
        """Batches of new records over the last two days, serialized once; each post puts
        its own prefix into the ids."""
        rng = random.Random(7)  # noqa: S311 - benchmark data
        base = (timezone.now() - timedelta(days=2)).astimezone(UTC)
        prices = _PriceList.load()
        templates = []
        for _ in range(count):
            records = make_batch(rng, load.PLACEHOLDER, size, base)
            body = json.dumps({"records": records}).encode()
            credits = sum((prices.credits(r) for r in records), Decimal(0))
            templates.append(load.Template(records=records, body=body, credits=credits))
        return templates

    def _stack_env(self, port: int, opts: dict) -> dict[str, str]:
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "DEBUG": "0",
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            # Tasks of this run go to a queue of its own: other workers on the same Redis
            # never take them, and this worker takes no one else's.
            "CELERY_TASK_DEFAULT_QUEUE": f"bench-{port}-{os.getpid()}",
            "CELERY_TASK_ALWAYS_EAGER": "false",
        }
        if opts["workers"]:
            env["GUNICORN_WORKERS"] = str(opts["workers"])
        return env

    def _stack_start(self, stack: load.Stack, port: int) -> None:
        stack.start("gunicorn", ["gunicorn", "-c", "console/gunicorn.conf.py", "console.wsgi"])
        queue = stack.env["CELERY_TASK_DEFAULT_QUEUE"]
        stack.start(
            "celery",
            ["celery", "-A", "console", "worker", "-Q", queue, "--concurrency", "1"]
            + ["-l", "warning"],
        )
        try:
            stack.serving(port, "/accounts/login/")
        except load.ServerDown as exc:
            raise CommandError(str(exc)) from None
        if not stack.alive("celery"):
            raise CommandError("the Celery worker exited:\n" + stack.tail("celery"))

    # --- The run --------------------------------------------------------------------------

    def _run(self, stamp: str, setup: dict, opts: dict) -> dict:
        templates = self._templates(opts["batch_size"])
        port = load.free_port()
        logs = Path(tempfile.mkdtemp(prefix="bench-serve-"))
        env = self._stack_env(port, opts)
        # Without DEBUG, pages link collectstatic's hashed files, as in production.
        env["STATIC_ROOT"] = str(logs / "static")
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
            cwd=settings.BASE_DIR,
            env=env,
            check=True,
            timeout=300,
        )
        stack = load.Stack(base_dir=settings.BASE_DIR, env=env, logs=logs)
        slug = setup["org"].slug
        reader_args = {
            "port": port,
            "paths": [f"/o/{slug}/", f"/o/{slug}/usage/"],
            "pause": opts["reader_pause"],
        }
        try:
            self._stack_start(stack, port)
            workers = stack.env.get("GUNICORN_WORKERS") or f"{2 * (os.cpu_count() or 1) + 1}"
            self.stdout.write(
                f"Stack: gunicorn ({workers} workers, console/gunicorn.conf.py, DEBUG=0) on "
                f"127.0.0.1:{port}, a Celery worker, PostgreSQL, Redis; {os.cpu_count()} CPUs; "
                f"logs in {logs}"
            )
            warm = self._warm_up(port, setup, int(workers), reader_args)
            # Each reader logs in once, as a person does, and keeps the session.
            reader_args["sessions"] = [
                self._login(port, setup) for _ in range(max(opts["readers"], 1))
            ]
            idle = self._pages(reader_args, opts["idle_seconds"])
            loaded, log, elapsed = self._load(stamp, setup, templates, opts, reader_args, port)
            # The same pages on the data the load left (what the records alone cost them).
            after = self._pages(reader_args, opts["idle_seconds"])
        finally:
            stack.stop()
        return {
            "templates": templates,
            "warm": warm,
            "idle": idle,
            "loaded": loaded,
            "after": after,
            "writers": log,
            "elapsed": elapsed,
        }

    def _login(self, port: int, setup: dict) -> dict[str, str]:
        client = load.Client(port)
        client.login(setup["email"], setup["password"])
        client.close()
        return client.cookies

    def _warm_up(self, port: int, setup: dict, workers: int, reader_args: dict) -> list:
        """Every worker imports its views and opens its connections before the timings:
        a few small batches (counted with the others) and pages."""
        client = load.Client(port)
        client.cookies = self._login(port, setup)
        for path in reader_args["paths"] * workers:
            client.request("GET", path)
        log = load.WriterLog()
        template = self._templates(10, count=1)
        load.writer(
            port=port,
            number=0,
            run="warm",
            secret=setup["secret"],
            templates=template,
            deadline=time.monotonic() + 1.0,
            log=log,
        )
        return [(template, log)]

    def _pages(self, reader_args: dict, seconds: float) -> load.ReaderLog:
        stop = threading.Event()
        threads, logs = load.readers_run(stop=stop, **reader_args)
        time.sleep(seconds)
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        return _merged(logs)

    def _load(self, stamp, setup, templates, opts, reader_args, port):
        """Writers and readers at once for --seconds; the writers' batches in flight at the
        deadline finish and count."""
        stop = threading.Event()
        reader_threads, reader_logs = load.readers_run(
            stop=stop, **{**reader_args, "sessions": reader_args["sessions"][: opts["readers"]]}
        )
        log = load.WriterLog()
        started = time.monotonic()
        deadline = started + opts["seconds"]
        writers = [
            threading.Thread(
                target=load.writer,
                kwargs={
                    "port": port,
                    "number": n,
                    "run": f"r{stamp[-6:]}",
                    "secret": setup["secret"],
                    "templates": templates,
                    "deadline": deadline,
                    "log": log,
                },
                daemon=True,
            )
            for n in range(opts["writers"])
        ]
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join()
        elapsed = max((b.finished for b in log.sent), default=time.monotonic()) - started
        stop.set()
        for thread in reader_threads:
            thread.join(timeout=120)
        return _merged(reader_logs), log, elapsed

    # --- The yardstick: a raw COPY of the same rows -----------------------------------------

    def _copy_rate(self, copy_setup: dict, templates: list[load.Template], batches: int) -> float:
        """Records/s of COPYing the same rows into the same tables on one connection, one
        transaction per batch (the rows are built before the clock starts)."""
        if batches <= 0:
            return 0.0
        prices = _PriceList.load()
        org, key, controller = copy_setup["org"], copy_setup["key"], copy_setup["controller"]
        prepared, records_total = [], 0
        for n in range(batches):
            template = templates[n % len(templates)]
            batch = IngestBatch.objects.create(organization=org, api_key=key)
            records = [
                {**r, "id": r["id"].replace(load.PLACEHOLDER, f"copy{n}")} for r in template.records
            ]
            records_total += len(records)
            prepared.append(_table_rows(records, org, key, batch, controller, prices))
        started = time.perf_counter()
        for tables in prepared:
            with transaction.atomic(), connection.cursor() as cursor:
                for table, columns, rows in tables:
                    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
        return records_total / (time.perf_counter() - started)

    # --- Figures --------------------------------------------------------------------------

    def _print_figures(self, report: dict, copy_rate: float, opts: dict) -> None:
        log: load.WriterLog = report["writers"]
        accepted = sum(b.accepted for b in log.sent)
        rate = accepted / report["elapsed"] if report["elapsed"] > 0 else 0.0
        latencies = [b.latency for b in log.sent]
        idle, loaded = report["idle"], report["loaded"]
        idle95 = load.percentile(idle.latencies, 0.95)
        loaded95 = load.percentile(loaded.latencies, 0.95)
        ms = 1000
        self.stdout.write(
            f"Load: {opts['writers']} writers posting {opts['batch_size']:,}-record batches, "
            f"{opts['readers']} readers (main page and usage panel, {opts['reader_pause']} s "
            f"between pages), {report['elapsed']:.1f} s"
        )
        self.stdout.write(
            f"records/s accepted:  {rate:,.0f} ({len(log.sent)} batches, {accepted:,} records)"
        )
        self.stdout.write(
            f"batch latency:       p50 {load.percentile(latencies, 0.5) * ms:.0f} ms, "
            f"p95 {load.percentile(latencies, 0.95) * ms:.0f} ms"
        )
        self.stdout.write(
            f"pages idle:          p50 {load.percentile(idle.latencies, 0.5) * ms:.0f} ms, "
            f"p95 {idle95 * ms:.0f} ms ({len(idle.latencies)} pages)"
        )
        ratio = loaded95 / idle95 if idle95 else 0.0
        self.stdout.write(
            f"pages under load:    p50 {load.percentile(loaded.latencies, 0.5) * ms:.0f} ms, "
            f"p95 {loaded95 * ms:.0f} ms ({len(loaded.latencies)} pages); "
            f"p95 under load / idle: {ratio:.2f}"
        )
        after = report["after"]
        after95 = load.percentile(after.latencies, 0.95)
        self.stdout.write(
            f"pages idle after:    p50 {load.percentile(after.latencies, 0.5) * ms:.0f} ms, "
            f"p95 {after95 * ms:.0f} ms ({len(after.latencies)} pages, on the data the load "
            f"left); p95 under load / idle after: {loaded95 / after95 if after95 else 0:.2f}"
        )
        if copy_rate:
            self.stdout.write(
                f"raw COPY:            {copy_rate:,.0f} records/s (same rows, same tables, one "
                f"connection); HTTP / COPY: {rate / copy_rate:.2f}"
            )
        errors = log.errors + idle.errors + loaded.errors + after.errors
        for error in errors[:10]:
            self.stdout.write(f"error: {error}")
        if errors:
            self.stdout.write(f"errors: {len(errors)} (retried batches count once)")

    # --- Verification ---------------------------------------------------------------------

    def _verify(self, setup: dict, report: dict) -> list[str]:
        org = setup["org"]
        runs = [(report["templates"], report["writers"]), *report["warm"]]
        expected: dict[str, set[str]] = {kind: set() for kind in _MODELS}
        charged = Decimal(0)
        for templates, log in runs:
            for batch in log.sent:
                template = templates[batch.template]
                charged += template.credits
                for r in template.records:
                    expected[r["kind"]].add(r["id"].replace(load.PLACEHOLDER, batch.prefix))
        problems = self._verify_records(org, expected)
        problems += self._verify_money(org, charged)
        problems += self._verify_reconcile(org)
        return problems

    def _verify_records(self, org: Organization, expected: dict[str, set[str]]) -> list[str]:
        sent = stored = missing = unexpected = 0
        for kind, ids in expected.items():
            rows = list(
                _MODELS[kind].objects.filter(organization=org).values_list("client_id", flat=True)
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

    def _verify_money(self, org: Organization, charged: Decimal) -> list[str]:
        debits = LedgerEntry.objects.filter(organization=org, kind=EntryKind.USAGE).aggregate(
            total=Sum("amount")
        )["total"] or Decimal(0)
        records = sum(
            (
                model.objects.filter(organization=org).aggregate(total=Sum("credits"))["total"]
                or Decimal(0)
                for model in _MODELS.values()
            ),
            Decimal(0),
        )
        balance = CreditAccount.objects.get(organization=org).balance
        ok = -debits == charged == records and balance == STARTING_CREDITS - charged
        self.stdout.write(
            f"verify ledger:       usage debits {-debits:f} = prices from the price list "
            f"{charged:f} = records' credits {records:f}; balance {balance:f}: "
            f"{'OK' if ok else 'FAILED'}"
        )
        return [] if ok else [f"ledger debits {-debits} vs prices {charged}"]

    def _verify_reconcile(self, org: Organization) -> list[str]:
        out, err = io.StringIO(), io.StringIO()
        try:
            call_command("reconcile", org=org.slug, stdout=out, stderr=err)
            ok = True
        except CommandError:
            ok = False
        summary = (out.getvalue().strip().splitlines() or ["(no output)"])[-1]
        self.stdout.write(f"verify reconcile:    {summary}: {'OK' if ok else 'FAILED'}")
        return [] if ok else [f"reconcile: {err.getvalue().strip()[:300]}"]

    # --- Clean-up -------------------------------------------------------------------------

    def _clean(self, orgs: list[Organization]) -> None:
        for org in orgs:
            owners = list(User.objects.filter(memberships__organization=org))
            with transaction.atomic():
                for model in (*_MODELS.values(), *BUCKET_TABLES, IngestBatch, LedgerEntry):
                    model.objects.filter(organization=org).delete()
                Controller.objects.filter(organization=org).delete()
                # The benchmark's own throwaway organization takes its audit trail with it
                # (the log refuses deletes through the ORM: this goes around that, here only).
                events = AuditEvent.objects.filter(organization=org)
                events._raw_delete(events.db)
                org.delete()
                for user in owners:
                    if not user.memberships.exists():
                        user.delete()
        # This server's tables carry the benchmark's dead rows until vacuumed; with
        # autovacuum on (the default) this only comes early.
        tables = [m._meta.db_table for m in (*_MODELS.values(), IngestBatch)]
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {', '.join(tables)}")


def _merged(logs: list[load.ReaderLog]) -> load.ReaderLog:
    merged = load.ReaderLog()
    for log in logs:
        merged.latencies += log.latencies
        merged.errors += log.errors
    return merged


def _database_url() -> str:
    """This process's database (the test database under pytest) as a URL for the stack."""
    db = connection.settings_dict
    auth = db["USER"] or ""
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


# --- Prices, restated -----------------------------------------------------------------------


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _hours(start: str, end: str) -> Decimal:
    micro = (_parse(end) - _parse(start)) // timedelta(microseconds=1)
    return Decimal(micro) / Decimal(3_600_000_000)


def _round(value: Decimal, quantum: Decimal) -> Decimal:
    return value.quantize(quantum, rounding=ROUND_HALF_EVEN)


class _PriceList:
    """What each record should cost, from the price list's rows and docs/money.md's rules,
    written out here rather than calling the service's pricing, so a pricing bug shows."""

    def __init__(self, models: dict[str, PriceModel], rates: dict[str, Decimal]):
        self.models, self.rates = models, rates

    @classmethod
    def load(cls) -> "_PriceList":
        return cls(
            {m.name: m for m in PriceModel.objects.all()},
            dict(CoreHourRate.objects.values_list("compute", "rate")),
        )

    def credits(self, r: dict) -> Decimal:
        return self.charge(r)[0]

    def charge(self, r: dict) -> tuple[Decimal, Decimal | None]:
        """(credits, billed core-hours) of one record."""
        if r["kind"] == "query":
            model = self.models[r["model"]]
            cost = (
                r["input_tokens"] * model.input_price_per_million
                + r["output_tokens"] * model.output_price_per_million
            ) / 1_000_000
            return _round(cost, _TEN_PLACES), None
        if r["kind"] == "worker_session":
            rate = self.models[r["model"]].worker_hour_rate
            return _round(rate * _hours(r["started_at"], r["ended_at"]), _TEN_PLACES), None
        if r["kind"] == "job":
            core_hours = _round(r["cores"] * _hours(r["started_at"], r["ended_at"]), _SIX_PLACES)
            rate = self.rates["controller" if r.get("controller") else "managed"]
            return _round(core_hours * rate, _TEN_PLACES), core_hours
        return Decimal(0), None  # matching runs are not priced


def _table_rows(records, org, key, batch, controller, prices: _PriceList) -> list:
    """The records as the rows ingestion writes (same tables, columns and values)."""
    now = timezone.now()
    tables: dict[str, tuple[list[str], list[list]]] = {}
    for r in records:
        credits, core_hours = prices.charge(r)
        row = {
            "organization_id": org.pk,
            "client_id": r["id"],
            "api_key_id": key.pk,
            "batch_id": batch.pk,
            "credits": credits,
            "created_at": now,
        }
        row.update(_kind_columns(r, prices, controller, core_hours, now))
        table = _MODELS[r["kind"]]._meta.db_table
        columns, rows = tables.setdefault(table, (list(row), []))
        rows.append([row[c] for c in columns])
    return [(table, columns, rows) for table, (columns, rows) in tables.items()]


def _kind_columns(r: dict, prices: _PriceList, controller, core_hours, now) -> dict:
    if r["kind"] == "query":
        return {
            "model_id": prices.models[r["model"]].pk,
            "occurred_at": _parse(r["occurred_at"]),
            "input_tokens": r["input_tokens"],
            "output_tokens": r["output_tokens"],
            "total_tokens": r["input_tokens"] + r["output_tokens"],
            "endpoint": r["endpoint"],
            "member": r["member"],
        }
    start, end = _parse(r["started_at"]), _parse(r["ended_at"])
    seconds = _round(Decimal((end - start) // timedelta(microseconds=1)) / 10**6, Decimal("1e-3"))
    if r["kind"] == "worker_session":
        return {
            "model_id": prices.models[r["model"]].pk,
            "started_at": start,
            "ended_at": end,
            "runtime_seconds": seconds,
        }
    if r["kind"] == "matching":
        return {
            "task": r["task"],
            "num_records": r["num_records"],
            "started_at": start,
            "ended_at": end,
            "run_time_seconds": seconds,
        }
    return {
        "status": r["status"],
        "cores": r["cores"],
        "controller_id": controller.pk if r.get("controller") else None,
        "submitted_at": _parse(r["submitted_at"]),
        "started_at": start,
        "ended_at": end,
        "core_hours": core_hours,
        "charge_reference": "bench",
        "updated_at": now,
    }
