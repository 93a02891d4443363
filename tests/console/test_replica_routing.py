"""Where reads go, decided without a replica server (the real one: test_replica_streaming)."""

import time
from types import SimpleNamespace

import pytest
from django.db import transaction
from django.http import HttpResponse
from django.test import RequestFactory

from accounts.models import Organization
from console import db_router, replica
from console.db_router import PrimaryReplicaRouter
from console.replica import STICKY_COOKIE, ReadRouting, ReplicaRoutingMiddleware, routing_var

router = PrimaryReplicaRouter()


@pytest.fixture
def with_replica(monkeypatch, settings):
    """As if DATABASE_REPLICA_URL were set and the replica well."""
    settings.REPLICA_STICKY_SECONDS = 10
    monkeypatch.setattr(db_router, "replica_configured", lambda: True)
    monkeypatch.setattr(replica, "replica_configured", lambda: True)
    monkeypatch.setattr(replica, "replica_usable", lambda: True)


def _read_alias_in(state: ReadRouting | None) -> str:
    token = routing_var.set(state)
    try:
        return router.db_for_read(Organization)
    finally:
        routing_var.reset(token)


def test_without_a_replica_everything_reads_the_primary():
    assert _read_alias_in(ReadRouting(replica_allowed=True)) == "default"


def test_a_read_request_reads_the_replica_and_everything_else_the_primary(with_replica):
    assert _read_alias_in(ReadRouting(replica_allowed=True)) == "replica"
    # No request (a Celery task, a command, a migration) or a write request: the primary.
    assert _read_alias_in(None) == "default"
    assert _read_alias_in(ReadRouting(replica_allowed=False)) == "default"


def test_a_request_that_wrote_reads_the_primary_from_then_on(with_replica):
    state = ReadRouting(replica_allowed=True)
    token = routing_var.set(state)
    try:
        assert router.db_for_read(Organization) == "replica"
        assert router.db_for_write(Organization) == "default"
        assert router.db_for_read(Organization) == "default"
    finally:
        routing_var.reset(token)


@pytest.mark.django_db(transaction=True)
def test_reads_inside_a_transaction_go_to_the_primary(with_replica):
    with transaction.atomic():
        assert _read_alias_in(ReadRouting(replica_allowed=True)) == "default"


def test_an_unusable_replica_is_skipped(with_replica, monkeypatch):
    monkeypatch.setattr(replica, "replica_usable", lambda: False)
    assert _read_alias_in(ReadRouting(replica_allowed=True)) == "default"


def test_the_replica_is_never_migrated():
    assert router.allow_migrate("replica", "usage") is False
    assert router.allow_migrate("default", "usage") is None


def _through_middleware(request) -> tuple[HttpResponse, ReadRouting]:
    seen = {}

    def view(request):
        seen["state"] = routing_var.get()
        return HttpResponse("ok")

    response = ReplicaRoutingMiddleware(view)(request)
    assert routing_var.get() is None
    return response, seen["state"]


def test_a_write_request_makes_its_browser_read_the_primary_for_a_while(with_replica):
    factory = RequestFactory()
    response, state = _through_middleware(factory.post("/o/acme/settings/keys/create"))
    assert state.replica_allowed is False
    cookie = response.cookies[STICKY_COOKIE]
    assert cookie["max-age"] == 10 and cookie["httponly"]
    assert time.time() + 9 < float(cookie.value) <= time.time() + 10

    request = factory.get("/o/acme/settings/keys/")
    request.COOKIES[STICKY_COOKIE] = cookie.value
    assert _through_middleware(request)[1].replica_allowed is False
    # Once it has passed (or in another browser), reads go to the replica again.
    request.COOKIES[STICKY_COOKIE] = str(time.time() - 1)
    assert _through_middleware(request)[1].replica_allowed is True
    assert _through_middleware(factory.get("/o/acme/"))[1].replica_allowed is True


def test_an_api_caller_that_wrote_reads_the_primary_by_its_credentials(with_replica):
    factory = RequestFactory()
    mine = {"HTTP_AUTHORIZATION": "Bearer sk-av-mine"}
    _through_middleware(factory.post("/api/v1/account/credits", **mine))
    # A program keeps no cookie: its credentials mark it (in the cache).
    assert not _through_middleware(factory.get("/api/v1/account/credits", **mine))[
        1
    ].replica_allowed
    theirs = {"HTTP_AUTHORIZATION": "Bearer sk-av-theirs"}
    assert _through_middleware(factory.get("/api/v1/account", **theirs))[1].replica_allowed


def test_a_read_that_wrote_bookkeeping_does_not_pin_its_client(with_replica):
    def view(request):
        router.db_for_write(Organization)  # e.g. an API key's last use
        return HttpResponse("ok")

    response = ReplicaRoutingMiddleware(view)(RequestFactory().get("/api/v1/account"))
    assert STICKY_COOKIE not in response.cookies


def test_a_read_that_failed_on_the_replica_is_served_again_from_the_primary(
    with_replica, monkeypatch
):
    from django.db import OperationalError
    from django.urls import ResolverMatch

    downs = []
    monkeypatch.setattr(replica, "replica_mark_down", downs.append)
    served_from = []

    def view(request, org_slug):
        served_from.append(router.db_for_read(Organization))
        if served_from[-1] == "replica":
            raise OperationalError("server closed the connection unexpectedly")
        return HttpResponse(org_slug)

    request = RequestFactory().get("/o/acme/")
    request.resolver_match = ResolverMatch(view, (), {"org_slug": "acme"})
    middleware = ReplicaRoutingMiddleware(lambda r: HttpResponse())
    token = routing_var.set(ReadRouting(replica_allowed=True))
    try:
        with pytest.raises(OperationalError) as failure:
            view(request, "acme")
        response = middleware.process_exception(request, failure.value)
        # Not a connection problem: not retried.
        assert middleware.process_exception(request, ValueError("a bug")) is None
    finally:
        routing_var.reset(token)
    assert response.content == b"acme"
    assert served_from == ["replica", "default"]
    assert downs == ["query failed: OperationalError"]


def _settings_with(env: dict[str, str]):
    import os
    import subprocess
    import sys

    from django.conf import settings

    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "DATABASE_REPLICA_URL", "REDIS_URL"}
    }
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c"]
        + [
            "import json; from django.conf import settings as s; "
            "r = s.DATABASES.get('replica', {}); "
            "print(json.dumps([r.get('HOST'), r.get('PORT'), r.get('TEST'), "
            "r.get('OPTIONS', {}).get('connect_timeout'), s.DATABASE_ROUTERS]))"
        ],
        cwd=settings.BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_database_replica_url_adds_a_replica_alias_that_tests_mirror():
    import json

    result = _settings_with(
        {
            "DATABASE_URL": "postgres://u@db-primary:5432/uc",
            "DATABASE_REPLICA_URL": "postgres://u@db-replica:5433/uc",
        }
    )
    assert result.returncode == 0, result.stderr
    host, port, test, timeout, routers = json.loads(result.stdout.strip().splitlines()[-1])
    assert (host, port, timeout) == ("db-replica", 5433, 2)
    assert test["MIRROR"] == "default"
    assert routers == ["console.db_router.PrimaryReplicaRouter"]


def test_a_replica_without_a_primary_url_is_refused():
    result = _settings_with({"DATABASE_REPLICA_URL": "postgres://u@db-replica:5433/uc"})
    assert result.returncode != 0
    assert "DATABASE_REPLICA_URL needs DATABASE_URL" in result.stderr


def test_a_read_that_failed_on_the_replica_before_the_view_is_served_again_from_the_primary(
    with_replica, monkeypatch
):
    downs = []
    monkeypatch.setattr(replica, "replica_mark_down", downs.append)
    replica_connection = SimpleNamespace(errors_occurred=False)
    monkeypatch.setattr(replica, "connections", {"replica": replica_connection})
    served_from = []

    def chain(request):
        # A middleware reads the session before any view: Django answers its error with a 500.
        served_from.append(router.db_for_read(Organization))
        if served_from[-1] == "replica":
            replica_connection.errors_occurred = True
            return HttpResponse(status=500)
        return HttpResponse("acme")

    response = ReplicaRoutingMiddleware(chain)(RequestFactory().get("/o/acme/"))
    assert (response.status_code, response.content) == (200, b"acme")
    assert served_from == ["replica", "default"]
    assert len(downs) == 1

    # A 500 with the replica well (a bug) is the answer, served once.
    replica_connection.errors_occurred = False
    served_from.clear()

    def broken(request):
        served_from.append(router.db_for_read(Organization))
        return HttpResponse(status=500)

    assert ReplicaRoutingMiddleware(broken)(RequestFactory().get("/o/acme/")).status_code == 500
    assert served_from == ["replica"] and len(downs) == 1
