"""What an operator's tooling talks to: health checks, request ids and log fields.

`HealthCheckMiddleware` sits first, so a load balancer's probe is answered before host
validation, the HTTPS redirect or a session: probes arrive by IP address over plain
HTTP. `/healthz` does no I/O (the process answers); `/readyz` checks the database, its
migrations and Redis, and answers 503 naming what failed. Neither says which versions
or hosts are behind it.

`RequestIdMiddleware` takes the caller's `X-Request-ID` when it is a sane token (or
makes one), returns it on the answer and puts it, with the organization's slug once a
page has resolved it, on every log line written while the request is served.
"""

import logging
import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse

from core.request_context import organization_var, request_id_var

logger = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
HEALTH_PATHS = {"/healthz", "/readyz"}


def request_id_for(header: str | None) -> str:
    """The caller's request id when it is a plain token, else a new one."""
    if header and _REQUEST_ID.match(header):
        return header
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        rid = request_id_for(request.headers.get("X-Request-ID"))
        request.request_id = rid  # type: ignore[attr-defined]
        rid_token = request_id_var.set(rid)
        org_token = organization_var.set(None)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(rid_token)
            organization_var.reset(org_token)
        response["X-Request-ID"] = rid
        return response


class LogContextFilter(logging.Filter):
    """Adds request_id and organization to every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        if not hasattr(record, "organization"):
            record.organization = organization_var.get()
        return True


# Health ---------------------------------------------------------------------------------

_migrations_applied: set[str] = set()


def _check_database() -> dict[str, str]:
    checks = {}
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception:
        logger.warning("health.database.unreachable", exc_info=True)
        return {"database": "unreachable", "migrations": "unknown"}
    # Once applied, migrations stay applied for this process's code: check only until then.
    if DEFAULT_DB_ALIAS in _migrations_applied:
        checks["migrations"] = "ok"
        return checks
    try:
        connection = connections[DEFAULT_DB_ALIAS]
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception:
        logger.warning("health.migrations.unknown", exc_info=True)
        checks["migrations"] = "unknown"
        return checks
    if pending:
        checks["migrations"] = "pending"
    else:
        checks["migrations"] = "ok"
        _migrations_applied.add(DEFAULT_DB_ALIAS)
    return checks


def _check_redis() -> str:
    url = settings.REDIS_URL
    if not url:
        return "not configured"
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except (redis.RedisError, OSError):
        logger.warning("health.redis.unreachable")
        return "unreachable"
    finally:
        client.close()
    return "ok"


def _check_static() -> str:
    """With hashed static files, collectstatic must have written its manifest."""
    from django.contrib.staticfiles.storage import staticfiles_storage

    manifest = getattr(staticfiles_storage, "manifest_name", None)
    if manifest is None:
        return "ok"
    return "ok" if staticfiles_storage.exists(manifest) else "not collected"


def readiness() -> tuple[bool, dict[str, str]]:
    checks = _check_database()
    checks["redis"] = _check_redis()
    checks["static"] = _check_static()
    ready = all(value in {"ok", "not configured"} for value in checks.values())
    return ready, checks


class HealthCheckMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path not in HEALTH_PATHS:
            return self.get_response(request)
        if request.method not in {"GET", "HEAD"}:
            return JsonResponse({"error": "method not allowed"}, status=405)
        if request.path == "/healthz":
            response = JsonResponse({"status": "ok"})
        else:
            ready, checks = readiness()
            response = JsonResponse(
                {"status": "ok" if ready else "unavailable", "checks": checks},
                status=200 if ready else 503,
            )
        response["Cache-Control"] = "no-store"
        return response
