"""Benchmark the gateway's path in one run, against the same server's floor.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python manage.py bench_gateway \
        [--seconds 5] [--ingest-seconds 15] [--workers N] [--threads N]

It starts the stack as deployed (docs/deploying.md; bench/stack.py): collectstatic,
gunicorn with console/gunicorn.conf.py and DEBUG=0, a Celery worker, PostgreSQL and
Redis. The load comes from wrk (Debian's package), a C load generator that costs the two
cores far less than the server does; Lua scripts give it POST bodies, rotating keys and fresh
record ids. Then it prints one table:

- GET /healthz (answered by the first middleware): the floor of this server;
- POST /api/v1/usage/authorize at 1 and 8 connections, one organization, then the same
  at 8 connections spread over --orgs organizations (one key each);
- GET /api/v1/account, the cheapest authenticated call, at 1 and 8 connections;
- ingestion: --writers connections posting 1,000-record batches of new records while a
  logged-in reader loads the usage panel; records/s counts what the server accepted;
- the usage panel's p95 with nothing else running, and under that load.

Rates are also given as a share of the floor's. Every key's own rate limits are set
high (the server is measured, not the limiter); budgets never refuse. After ingestion it
checks what the run left (bench/verify.py): every accepted record stored once, usage debits
equal to the records' credits, and `manage.py reconcile` clean (ledger, rollups, spend
counters against PostgreSQL); a failed check fails the command. Afterwards the
organizations are deleted.
"""

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from bench import load, verify
from bench.orgs import BenchOrg, bench_org, organizations_delete, run_stamp
from bench.records import day_batches
from bench.stack import Stack, services_required

WRK = "/usr/bin/wrk"

# Rotating keys (and, for ingestion, a fresh prefix in every record id per request).
_LUA = r"""
local counter = 0
local thread_id = 0
local threads = {}
local next_id = 0
keys = {%(keys)s}
method = "%(method)s"
path = "%(path)s"
bodies = {}
for _, name in ipairs({%(bodies)s}) do
  local f = assert(io.open(name, "rb"))
  table.insert(bodies, f:read("*a"))
  f:close()
end

function setup(thread)
  next_id = next_id + 1
  thread:set("thread_id", next_id)
end

request = function()
  counter = counter + 1
  local key = keys[(counter %% #keys) + 1]
  local headers = {["Authorization"] = "Bearer " .. key}
  local body = nil
  if #bodies > 0 then
    headers["Content-Type"] = "application/json"
    body = bodies[(counter %% #bodies) + 1]
    if %(fresh_ids)s then
      body = body:gsub("~batch~", "%(run)st" .. thread_id .. "n" .. counter)
    end
  end
  return wrk.format(method, path, headers, body)
end
"""

_LATENCY = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_TOTAL = re.compile(r"^\s+(\d+) requests in ([\d.]+)(m|s)", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_ERRORS = re.compile(r"Socket errors: (.*)")
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class Row:
    name: str
    connections: int | str
    rate: float  # requests (or records) per second
    p50: float | None = None  # ms
    p99: float | None = None
    p95: float | None = None
    unit: str = "req/s"
    bad: int = 0
    ratio: bool = True


class Command(BaseCommand):
    help = "Benchmark healthz, authorize, an authenticated GET, ingestion and the panel with wrk."

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=5, help="each wrk measurement")
        parser.add_argument("--ingest-seconds", type=float, default=15)
        parser.add_argument("--idle-seconds", type=float, default=8, help="the panel alone")
        parser.add_argument("--orgs", type=int, default=20)
        parser.add_argument("--writers", type=int, default=4)
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--reader-pause", type=float, default=0.2)
        parser.add_argument("--workers", type=int, default=None, help="GUNICORN_WORKERS")
        parser.add_argument("--threads", type=int, default=None, help="GUNICORN_THREADS")
        parser.add_argument("--worker-class", default=None, help="GUNICORN_WORKER_CLASS")

    def handle(self, *args, **opts):
        services_required("bench_gateway")
        if not Path(WRK).exists() and shutil.which("wrk") is None:
            raise CommandError("bench_gateway needs wrk (Debian: apt-get install wrk)")
        settings.DEBUG = False
        stamp = run_stamp()
        self.problems: list[str] = []
        main = bench_org(stamp)
        others = [bench_org(f"{stamp}o{n}") for n in range(opts["orgs"])]
        try:
            rows = self._run(stamp, main, others, opts)
        finally:
            organizations_delete([main.org, *(o.org for o in others)])
        self._print(rows)

    # --- The run ----------------------------------------------------------------------------

    def _run(self, stamp: str, main: BenchOrg, others: list[BenchOrg], opts: dict) -> list:
        stack = Stack(
            "gateway",
            workers=opts["workers"],
            threads=opts["threads"],
            worker_class=opts["worker_class"],
        )
        seconds = opts["seconds"]
        authorize_body = stack.logs / "authorize.json"
        authorize_body.write_text(
            json.dumps({"model": "llama-3.1-8b", "input_tokens": 800, "max_output_tokens": 500})
        )
        batches = []
        for n, template in enumerate(load.templates(day_batches(opts["batch_size"], 4))):
            path = stack.logs / f"batch{n}.json"
            path.write_bytes(template.body)
            batches.append(path)
        one = [main.secret]
        many = [o.secret for o in others] or one
        rows: list[Row] = []
        with stack:
            self.stdout.write(f"Stack: {stack.describe()}; wrk")
            wrk = _Wrk(f"http://127.0.0.1:{stack.port}", stack.logs, run=f"g{stamp[-6:]}")
            # Warm-up: every worker imports its views and opens its connections.
            wrk.run("GET", "/healthz", [], connections=8, seconds=1)
            wrk.run("POST", "/api/v1/usage/authorize", many, [authorize_body], 8, 2)
            wrk.run("GET", "/api/v1/account", many, connections=8, seconds=1)
            rows.append(wrk.row("GET /healthz (floor)", "GET", "/healthz", [], 8, seconds))
            for conns in (1, 8):
                rows.append(
                    wrk.row("POST authorize, 1 org", "POST", "/api/v1/usage/authorize", one,
                            conns, seconds, [authorize_body])
                )  # fmt: skip
            rows.append(
                wrk.row(f"POST authorize, {len(many)} orgs", "POST", "/api/v1/usage/authorize",
                        many, 8, seconds, [authorize_body])
            )  # fmt: skip
            for conns in (1, 8):
                rows.append(
                    wrk.row("GET /api/v1/account", "GET", "/api/v1/account", one, conns, seconds)
                )
            rows.extend(self._ingestion(wrk, stack.port, main, batches, opts))
        return rows

    def _ingestion(self, wrk, port: int, main: BenchOrg, batches: list, opts: dict) -> list:
        panel = f"/o/{main.org.slug}/usage/"
        readers = {
            "port": port,
            "paths": [panel],
            "pause": opts["reader_pause"],
            "sessions": [load.session(port, main.email, main.password)],
        }
        load.Client(port).request("GET", panel)  # warm
        idle = load.Readers(**readers).run_for(opts["idle_seconds"])
        before = verify.accepted(main)
        with load.Readers(**readers) as loaded:
            result = wrk.run(
                "POST", "/api/v1/usage/records", [main.secret], batches,
                connections=opts["writers"], seconds=opts["ingest_seconds"], fresh_ids=True,
            )  # fmt: skip
        records = verify.accepted(main) - before  # answered while wrk ran
        # Then what the run left: batches in flight when wrk stopped commit first.
        verify.accepted_settled(main)
        self.problems += verify.records_stored_once(main, self.stdout.write)
        self.problems += verify.money_matches(main, self.stdout.write)
        self.problems += verify.reconcile_clean(main, self.stdout.write)
        idle_p95 = load.percentile(idle.latencies, 0.95) * 1000
        loaded_p95 = load.percentile(loaded.log.latencies, 0.95) * 1000
        return [
            Row(
                f"ingestion, {opts['batch_size']}-record batches, a reader on the panel",
                opts["writers"],
                records / result["elapsed"],
                p50=result["p50"],
                p99=result["p99"],
                unit="records/s",
                bad=result["bad"],
                ratio=False,
            ),
            Row("usage panel, idle", 1, len(idle.latencies) / opts["idle_seconds"], p95=idle_p95,
                ratio=False),
            Row("usage panel, under ingestion", 1, len(loaded.log.latencies) / result["elapsed"],
                p95=loaded_p95, ratio=False),
        ]  # fmt: skip

    # --- Output -----------------------------------------------------------------------------

    def _print(self, rows: list[Row]) -> None:
        floor = rows[0].rate if rows else 0.0
        self.stdout.write("")
        self.stdout.write(
            f"{'call':<58} {'conns':>5} {'rate':>10} {'unit':<9} {'p50 ms':>7} {'p95 ms':>7} "
            f"{'p99 ms':>7} {'÷ floor':>7} {'errors':>6}"
        )

        def ms(value: float | None) -> str:
            return "" if value is None else f"{value:.1f}"

        for row in rows:
            share = f"{row.rate / floor:.2f}" if row.ratio and floor else ""
            self.stdout.write(
                f"{row.name:<58} {row.connections!s:>5} {row.rate:>10,.0f} {row.unit:<9} "
                f"{ms(row.p50):>7} {ms(row.p95):>7} {ms(row.p99):>7} {share:>7} {row.bad:>6}"
            )
        one = [r for r in rows if r.name == "POST authorize, 1 org" and r.connections == 8]
        many = [r for r in rows if r.name.startswith("POST authorize") and r.name.endswith("orgs")]
        if one and many and one[0].rate:
            self.stdout.write(
                f"authorize, many organizations ÷ one, 8 connections: "
                f"{many[0].rate / one[0].rate:.2f}"
            )
        panel = {row.name: row.p95 for row in rows if row.name.startswith("usage panel")}
        idle, loaded = panel.get("usage panel, idle"), panel.get("usage panel, under ingestion")
        if idle and loaded:
            self.stdout.write(f"panel p95 under load ÷ idle: {loaded / idle:.2f}")
        for problem in self.problems:
            self.stdout.write(f"verify FAILED: {problem}")
        if self.problems:
            raise CommandError("the run lost, duplicated or mispriced something (above)")
        bad = sum(row.bad for row in rows)
        if bad:
            raise CommandError(f"{bad} answers were errors (see the errors column)")


class _Wrk:
    """Runs wrk with a Lua script per measurement and reads its figures."""

    def __init__(self, base: str, logs: Path, *, run: str):
        self.base, self.logs, self.run_id, self.count = base, logs, run, 0

    def run(
        self,
        method: str,
        path: str,
        keys: list[str],
        bodies: list[Path] | None = None,
        connections: int = 8,
        seconds: float = 5,
        *,
        fresh_ids: bool = False,
    ) -> dict:
        self.count += 1
        script = self.logs / f"wrk{self.count}.lua"
        script.write_text(
            _LUA
            % {
                "keys": ", ".join(json.dumps(k) for k in keys) or '""',
                "method": method,
                "path": path,
                "bodies": ", ".join(json.dumps(str(b)) for b in bodies or []),
                "fresh_ids": "true" if fresh_ids else "false",
                "run": f"{self.run_id}c{self.count}",
            }
        )
        threads = max(1, min(connections, 2))
        command = [WRK, "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s"]
        command += ["--latency", "--timeout", "30s", "-s", str(script), self.base]
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)  # noqa: S603
        out = done.stdout
        if done.returncode != 0 or not _RATE.search(out):
            raise CommandError(f"wrk failed ({done.returncode}):\n{out}\n{done.stderr}")
        percentiles = {int(p): float(v) * _UNIT_MS[u] for p, v, u in _LATENCY.findall(out)}
        total = _TOTAL.search(out)
        elapsed = seconds
        if total:
            elapsed = float(total.group(2)) * (60 if total.group(3) == "m" else 1)
        non_2xx = _NON_2XX.search(out)
        socket_errors = _ERRORS.search(out)
        bad = int(non_2xx.group(1)) if non_2xx else 0
        if socket_errors:
            bad += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
        return {
            "rate": float(_RATE.search(out).group(1)),  # type: ignore[union-attr]
            "p50": percentiles.get(50),
            "p99": percentiles.get(99),
            "elapsed": elapsed,
            "bad": bad,
        }

    def row(self, name, method, path, keys, connections, seconds, bodies=None) -> Row:
        result = self.run(method, path, keys, bodies, connections, seconds)
        return Row(
            name, connections, result["rate"], p50=result["p50"], p99=result["p99"],
            bad=result["bad"],
        )  # fmt: skip
