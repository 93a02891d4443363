"""Benchmark the gateway's pre-request check over real HTTP.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python manage.py bench_authorize \
        [--seconds 20] [--clients 8] [--settle-every 0]

It starts the stack as deployed (bench/stack.py: gunicorn with console/gunicorn.conf.py
and DEBUG=0, a Celery worker, PostgreSQL, Redis), as `bench_serve` does, and makes an
enterprise organization with credits, an API key (its own RPM and TPM set high, so the
server is measured rather than the limiter), an organization budget and a key budget
with hard levels no run reaches (every budget check runs, none refuses). Then --clients
threads, each on its own keep-alive connection, post `POST /api/v1/usage/authorize`
(input_tokens and max_output_tokens: the gateway's usual call) for --seconds; with
--settle-every N, every Nth allowed request is also settled by a one-record batch.

It prints the latency percentiles and authorizations per second, then checks that the
held reservations equal the organization's hold (nothing lost under concurrency), and
deletes its organization.
"""

import json
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Sum

from bench import load
from bench.orgs import BenchOrg, bench_org, organizations_delete, run_stamp
from bench.product import Budget, Reservation, SpendHold, counters_enabled, counters_org_hold
from bench.stack import Stack, services_required


class Command(BaseCommand):
    help = "Benchmark POST /api/v1/usage/authorize through gunicorn, PostgreSQL and Redis."

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=20)
        parser.add_argument("--clients", type=int, default=8, help="concurrent connections")
        parser.add_argument("--workers", type=int, default=None, help="gunicorn workers")
        parser.add_argument(
            "--settle-every", type=int, default=0, help="settle every Nth allowed request"
        )

    def handle(self, *args, **opts):
        services_required("bench_authorize")
        settings.DEBUG = False
        setup = self._organization()
        try:
            report = self._run(setup, opts)
            self._print(report, opts)
            problems = self._verify(setup, report)
        finally:
            organizations_delete([setup.org])
        if problems:
            raise CommandError("verification failed: " + "; ".join(problems))

    def _organization(self) -> BenchOrg:
        """The benchmark's organization with a budget on it and one on its key, whose hard
        levels no run reaches."""
        setup = bench_org(run_stamp())
        levels = {"soft_limit": Decimal("1e9"), "hard_limit": Decimal("1e10")}
        with transaction.atomic():
            Budget.objects.create(
                organization=setup.org, scope="organization", period="month", **levels
            )
            Budget.objects.create(
                organization=setup.org, scope="api_key", api_key=setup.key, period="day", **levels
            )
        return setup

    def _run(self, setup: BenchOrg, opts: dict) -> dict:
        headers = {"Authorization": f"Bearer {setup.secret}", "Content-Type": "application/json"}
        body = json.dumps(
            {"model": "llama-3.1-8b", "input_tokens": 800, "max_output_tokens": 500}
        ).encode()
        stack = Stack(
            "authorize", workers=opts["workers"], env={"ALERT_EVALUATE_DEBOUNCE_SECONDS": "3600"}
        )
        with stack:
            self.stdout.write(f"Stack: {stack.describe()}")
            port = stack.port
            self._clients(port, headers, body, 2.0, opts)  # warm-up: every worker's imports
            report = self._clients(port, headers, body, opts["seconds"], opts)
            # The floor on this machine: the cheapest authenticated call (GET /api/v1/account:
            # the same key lookup, throttle and middleware, one query), same clients.
            report["floor"] = self._clients(
                port, headers, None, min(opts["seconds"], 5.0), opts, path="/api/v1/account"
            )
            return report

    def _clients(self, port, headers, body, seconds, opts, path="/api/v1/usage/authorize") -> dict:
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        settled: list[str] = []
        errors: list[str] = []
        lock = threading.Lock()
        stop_at = time.monotonic() + seconds

        def run(n: int) -> None:
            client = load.Client(port)
            mine: list[float] = []
            codes: dict[int, int] = {}
            count = 0
            mine_settled: list[str] = []
            try:
                while time.monotonic() < stop_at:
                    started = time.perf_counter()
                    status, data = client.request("POST" if body else "GET", path, body, headers)
                    mine.append(time.perf_counter() - started)
                    codes[status] = codes.get(status, 0) + 1
                    if status == 200 and body and opts["settle_every"]:
                        count += 1
                        if count % opts["settle_every"] == 0:
                            rid = json.loads(data)["reservation"]
                            record = {"id": f"s-{rid}", "kind": "query", "model": "llama-3.1-8b",
                                      "occurred_at": datetime.now(UTC).isoformat(),
                                      "input_tokens": 800, "output_tokens": 300,
                                      "reservation": rid}  # fmt: skip
                            answer = client.request(
                                "POST", "/api/v1/usage/records",
                                json.dumps({"records": [record]}).encode(), headers,
                            )  # fmt: skip
                            if answer[0] == 200:
                                mine_settled.append(rid)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                client.close()
                with lock:
                    latencies.extend(mine)
                    settled.extend(mine_settled)
                    for code, k in codes.items():
                        statuses[code] = statuses.get(code, 0) + k

        started = time.monotonic()
        threads = [threading.Thread(target=run, args=(n,)) for n in range(opts["clients"])]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        return {
            "latencies": latencies,
            "statuses": statuses,
            "elapsed": elapsed,
            "errors": errors,
            "settled": len(set(settled)),
        }

    def _print(self, report: dict, opts: dict) -> None:
        lat = report["latencies"]
        ms = [v * 1000 for v in lat]
        self.stdout.write(
            f"authorize: {len(lat):,} requests from {opts['clients']} clients in "
            f"{report['elapsed']:.1f} s; answers {dict(sorted(report['statuses'].items()))}"
            + (f"; settled {report['settled']:,}" if opts["settle_every"] else "")
        )
        self.stdout.write(
            f"authorize latency ms: p50 {load.percentile(ms, 0.50):.1f}, "
            f"p95 {load.percentile(ms, 0.95):.1f}, p99 {load.percentile(ms, 0.99):.1f}, "
            f"max {max(ms, default=0):.1f}"
        )
        self.stdout.write(f"authorizations per second: {len(lat) / report['elapsed']:,.0f}")
        floor = [v * 1000 for v in report["floor"]["latencies"]]
        self.stdout.write(
            f"floor (GET /api/v1/account, same clients) ms: p50 {load.percentile(floor, 0.5):.1f}, "
            f"p95 {load.percentile(floor, 0.95):.1f}; "
            f"{len(floor) / report['floor']['elapsed']:,.0f} requests per second"
        )
        for line in report["errors"][:5]:
            self.stdout.write(f"client error: {line}")

    def _verify(self, setup: BenchOrg, report: dict) -> list[str]:
        org = setup.org
        problems = []
        held = Reservation.objects.filter(organization=org, status="held").aggregate(
            total=Sum("credits")
        )["total"] or Decimal(0)
        # With authorize on Redis' counters the organization's hold is theirs.
        counted = counters_org_hold(org_id=org.pk) if counters_enabled() else None
        hold = (
            counted
            if counted is not None
            else SpendHold.objects.get(organization=org, dimension="o", subject="").credits
        )
        if held != hold:
            problems.append(f"held reservations {held} != the organization's hold {hold}")
        if report["errors"]:
            problems.append(f"{len(report['errors'])} client errors")
        if set(report["statuses"]) - {200}:
            problems.append(f"answers other than 200: {report['statuses']}")
        self.stdout.write(
            f"check: held reservations {held} = the organization's hold {hold}"
            + (" (ok)" if held == hold else " (MISMATCH)")
        )
        return problems
