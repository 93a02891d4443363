"""Benchmark ingestion: records/s through the service, through the HTTP endpoint, and a
plain PostgreSQL COPY of rows of the same shape, on this machine.

    DATABASE_URL=postgres://... python manage.py bench_ingest [--batches 20]

It works in a throw-away organization (deleted afterwards unless --keep). The HTTP
figure goes through Django's full stack (middleware, URL routing, auth, rate limits,
JSON) with the test client, in-process: no network or WSGI server in the way.
"""

import json
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from accounts.models import Organization, Tier
from accounts.services import apikey_create
from billing.models import LedgerEntry, PriceModel
from ingest.services.ingest import usage_records_ingest
from usage.models import IngestBatch, Job, MatchingRun, Query, WorkerSession
from usage.services.controllers import controller_register

MODELS = ["llama-3.1-8b", "llama-3.1-70b", "e5-large-v2", "phi-3-mini"]


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def make_batch(rng: random.Random, prefix: str, size: int, base: datetime) -> list[dict]:
    """A realistic mix: 70% queries, 15% finished jobs, 10% worker sessions, 5% matching."""
    records = []
    for n in range(size):
        at = base + timedelta(seconds=rng.randint(0, 86_000))
        roll = rng.random()
        if roll < 0.70:
            records.append(
                {
                    "id": f"{prefix}-{n}",
                    "kind": "query",
                    "occurred_at": _iso(at),
                    "model": rng.choice(MODELS),
                    "input_tokens": rng.randint(10, 2000),
                    "output_tokens": rng.randint(0, 1000),
                    "endpoint": "/v1/chat/completions",
                    "member": f"user{rng.randint(1, 20)}@bench.example",
                }
            )
        elif roll < 0.85:
            record = {
                "id": f"{prefix}-{n}",
                "kind": "job",
                "status": "completed",
                "cores": rng.choice([4, 8, 16]),
                "submitted_at": _iso(at),
                "started_at": _iso(at + timedelta(seconds=30)),
                "ended_at": _iso(at + timedelta(seconds=30 + rng.randint(60, 7200))),
            }
            if rng.random() < 0.5:
                record["controller"] = "bench-ctl"
            records.append(record)
        elif roll < 0.95:
            records.append(
                {
                    "id": f"{prefix}-{n}",
                    "kind": "worker_session",
                    "model": rng.choice(MODELS),
                    "started_at": _iso(at),
                    "ended_at": _iso(at + timedelta(seconds=rng.randint(60, 36_000))),
                }
            )
        else:
            records.append(
                {
                    "id": f"{prefix}-{n}",
                    "kind": "matching",
                    "task": rng.choice(["IDR", "CDM"]),
                    "num_records": rng.randint(100, 100_000),
                    "started_at": _iso(at),
                    "ended_at": _iso(at + timedelta(seconds=rng.randint(5, 600))),
                }
            )
    return records


class Command(BaseCommand):
    help = "Benchmark usage ingestion (service, HTTP endpoint) against a plain PostgreSQL COPY."

    def add_arguments(self, parser):
        parser.add_argument("--batches", type=int, default=20, help="batches per measurement")
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--keep", action="store_true", help="keep the benchmark's rows")

    def handle(self, *args, **opts):
        settings.DEBUG = False  # no query log growing in memory
        batches, size = opts["batches"], opts["batch_size"]
        rng = random.Random(7)  # noqa: S311 - benchmark data
        stamp = timezone.now().strftime("%Y%m%d%H%M%S%f")
        org = Organization.objects.create(
            name=f"Benchmark {stamp}",
            slug=f"bench-{stamp}",
            tier=Tier.ENTERPRISE,
            allow_overdraft=True,
        )
        controller = controller_register(org=org, name="bench-ctl", cores=64, memory_gb=256)
        issued = apikey_create(org=org, name="Benchmark")
        key = issued.key
        key.rate_limit_rpm, key.rate_limit_tpm = 10**9, 10**15
        key.save()
        base = (timezone.now() - timedelta(days=2)).astimezone(UTC)
        on_postgres = connection.vendor == "postgresql"
        self.stdout.write(
            f"Database: {connection.vendor}; {batches} batches of {size} records per measurement"
        )
        try:
            # Warm up (imports, connection, price list caches) outside the timings.
            usage_records_ingest(org=org, records=make_batch(rng, "warm", size, base), api_key=key)

            service = [make_batch(rng, f"svc{b}", size, base) for b in range(batches)]
            started = time.perf_counter()
            for records in service:
                result = usage_records_ingest(org=org, records=records, api_key=key)
                assert len(result.accepted) == size, result.rejected[:3]
            service_rate = batches * size / (time.perf_counter() - started)
            self.stdout.write(f"service:        {service_rate:10,.0f} records/s")

            bodies = [
                json.dumps({"records": make_batch(rng, f"http{b}", size, base)})
                for b in range(batches)
            ]
            client = Client(HTTP_HOST="localhost")
            auth = {"Authorization": f"Bearer {issued.secret}"}
            started = time.perf_counter()
            for body in bodies:
                response = client.post(
                    "/api/v1/usage/records",
                    data=body,
                    content_type="application/json",
                    headers=auth,
                )
                assert response.status_code == 200, response.content[:300]
            http_rate = batches * size / (time.perf_counter() - started)
            self.stdout.write(f"HTTP endpoint:  {http_rate:10,.0f} records/s")

            if not on_postgres:
                self.stdout.write("COPY: skipped (needs PostgreSQL: set DATABASE_URL)")
                return
            copy_batches = [
                self._rows(make_batch(rng, f"copy{b}", size, base), org, key.pk, controller)
                for b in range(batches)
            ]
            started = time.perf_counter()
            for rows in copy_batches:
                with transaction.atomic(), connection.cursor() as cursor:
                    for table, columns, values in rows:
                        if not values:
                            continue
                        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
                        with cursor.cursor.copy(sql) as copy:
                            for row in values:
                                copy.write_row(row)
            copy_rate = batches * size / (time.perf_counter() - started)
            self.stdout.write(f"PostgreSQL COPY:{copy_rate:10,.0f} records/s")
            self.stdout.write(
                f"ratio: service/COPY {service_rate / copy_rate:.2f}, "
                f"HTTP/COPY {http_rate / copy_rate:.2f}"
            )
        finally:
            if not opts["keep"]:
                self._clean(org)

    def _rows(self, records, org, key_id, controller_issued):
        """The same records as plain table rows (what ingestion would insert), for COPY."""
        prices = {m.name: m for m in PriceModel.objects.all()}
        now = timezone.now()
        queries, jobs, sessions, matching = [], [], [], []
        for r in records:
            common = [org.pk, r["id"], key_id, None, Decimal("0.0001"), now]
            if r["kind"] == "query":
                total = r["input_tokens"] + r["output_tokens"]
                queries.append(
                    [
                        *common,
                        prices[r["model"]].pk,
                        r["occurred_at"],
                        r["input_tokens"],
                        r["output_tokens"],
                        total,
                        r["endpoint"],
                        r["member"],
                    ]
                )
            elif r["kind"] == "job":
                controller_id = controller_issued.controller.pk if r.get("controller") else None
                jobs.append(
                    [
                        *common,
                        r["status"],
                        r["cores"],
                        controller_id,
                        r["submitted_at"],
                        r["started_at"],
                        r["ended_at"],
                        Decimal("1.5"),
                        "bench",
                        now,
                    ]
                )
            elif r["kind"] == "worker_session":
                sessions.append(
                    [*common, prices[r["model"]].pk, r["started_at"], r["ended_at"], Decimal("60")]
                )
            else:
                matching.append(
                    [
                        *common,
                        r["task"],
                        r["num_records"],
                        r["started_at"],
                        r["ended_at"],
                        Decimal("60"),
                    ]
                )
        base = ["organization_id", "client_id", "api_key_id", "batch_id", "credits", "created_at"]
        return [
            (
                Query._meta.db_table,
                [
                    *base,
                    "model_id",
                    "occurred_at",
                    "input_tokens",
                    "output_tokens",
                    "total_tokens",
                    "endpoint",
                    "member",
                ],
                queries,
            ),
            (
                Job._meta.db_table,
                [
                    *base,
                    "status",
                    "cores",
                    "controller_id",
                    "submitted_at",
                    "started_at",
                    "ended_at",
                    "core_hours",
                    "charge_reference",
                    "updated_at",
                ],
                jobs,
            ),
            (
                WorkerSession._meta.db_table,
                [*base, "model_id", "started_at", "ended_at", "runtime_seconds"],
                sessions,
            ),
            (
                MatchingRun._meta.db_table,
                [*base, "task", "num_records", "started_at", "ended_at", "run_time_seconds"],
                matching,
            ),
        ]

    def _clean(self, org: Organization) -> None:
        with transaction.atomic():
            for model in (Query, Job, WorkerSession, MatchingRun, IngestBatch, LedgerEntry):
                model.objects.filter(organization=org).delete()
            org.delete()
