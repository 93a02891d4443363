"""Benchmark ingestion: records/s through the service, through the HTTP endpoint, and a
plain PostgreSQL COPY of the same rows, on this machine.

    DATABASE_URL=postgres://... python manage.py bench_ingest [--batches 20]

It works in a throw-away organization (deleted afterwards unless --keep). The HTTP
figure goes through Django's full stack (middleware, URL routing, auth, rate limits,
JSON) with the test client, in-process: no network or WSGI server in the way.
"""

import json
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection
from django.test import Client

from bench.orgs import bench_org, organizations_delete, run_stamp
from bench.product import usage_records_ingest
from bench.records import copy_rate, day_batches


class Command(BaseCommand):
    help = "Benchmark usage ingestion (service, HTTP endpoint) against a plain PostgreSQL COPY."

    def add_arguments(self, parser):
        parser.add_argument("--batches", type=int, default=20, help="batches per measurement")
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--keep", action="store_true", help="keep the benchmark's rows")

    def handle(self, *args, **opts):
        settings.DEBUG = False  # no query log growing in memory
        batches, size = opts["batches"], opts["batch_size"]
        setup = bench_org(run_stamp())
        self.stdout.write(
            f"Database: {connection.vendor}; {batches} batches of {size} records per measurement"
        )
        try:
            # Warm up (imports, connection, price list caches) outside the timings.
            warm = day_batches(size, 1, seed=1, prefix="warm")[0]
            usage_records_ingest(org=setup.org, records=warm, api_key=setup.key)

            service = day_batches(size, batches, seed=2, prefix="svc")
            started = time.perf_counter()
            for records in service:
                result = usage_records_ingest(org=setup.org, records=records, api_key=setup.key)
                assert len(result.accepted) == size, result.rejected[:3]
            service_rate = batches * size / (time.perf_counter() - started)
            self.stdout.write(f"service:        {service_rate:10,.0f} records/s")

            bodies = [
                json.dumps({"records": records})
                for records in day_batches(size, batches, seed=3, prefix="http")
            ]
            client = Client(HTTP_HOST="localhost")
            auth = {"Authorization": f"Bearer {setup.secret}"}
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

            if connection.vendor != "postgresql":
                self.stdout.write("COPY: skipped (needs PostgreSQL: set DATABASE_URL)")
                return
            rate = copy_rate(setup, day_batches(size, batches, seed=4, prefix="copy"))
            self.stdout.write(f"PostgreSQL COPY:{rate:10,.0f} records/s")
            self.stdout.write(
                f"ratio: service/COPY {service_rate / rate:.2f}, HTTP/COPY {http_rate / rate:.2f}"
            )
        finally:
            if not opts["keep"]:
                organizations_delete([setup.org])
