"""The production stack, started for real: collectstatic, then gunicorn with the repo's
config and DEBUG=0 on PostgreSQL and a private Redis, spoken to over HTTP.

What docs/deploying.md says is what these tests run: the same commands, the same
environment variables, the same probes.
"""

import http.client
import http.cookiejar
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import PASSWORD, make_member, make_org, make_user
from tests.workers import PrivateRedis, current_database_url, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(settings.BASE_DIR)
YEAR = 365 * 24 * 3600


class Served:
    def __init__(self, base: str, log: Path, proc: subprocess.Popen):
        self.base, self.log, self.proc = base, log, proc
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str, headers: dict | None = None):
        request = urllib.request.Request(self.base + path, headers=headers or {})
        try:
            with self.opener.open(request, timeout=15) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def post_form(self, path: str, fields: dict):
        body = urllib.parse.urlencode(fields).encode()
        request = urllib.request.Request(
            self.base + path, data=body, headers={"Referer": self.base + path}
        )
        with self.opener.open(request, timeout=15) as response:
            return response.status, response.geturl(), response.read()

    def log_lines(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if line.strip()]


def _environment(redis_port: int, static_root: Path) -> dict:
    return {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "production-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DATABASE_URL": current_database_url(),
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "STATIC_ROOT": str(static_root),
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }


def _wait_until_listening(served: Served, deadline: float) -> None:
    while time.monotonic() < deadline:
        if served.proc.poll() is not None:
            pytest.fail("gunicorn exited:\n" + served.log.read_text()[-3000:])
        try:
            if served.get("/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail("gunicorn did not answer /healthz within 30 s")


@pytest.fixture
def redis_server():
    if shutil.which("redis-server") is None:
        pytest.skip("needs the redis-server program")
    server = PrivateRedis(free_port())
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.kill()


@pytest.fixture(scope="module")
def static_root(tmp_path_factory):
    """`manage.py collectstatic` once for the module's servers, as a deploy does once."""
    root = tmp_path_factory.mktemp("static")
    # Brotli is installed (WeasyPrint's fonttools[woff] brings it), so WhiteNoise also
    # writes .br files: plotly.min.js at Brotli's best quality is about a minute of CPU
    # on a busy machine, hence once per module.
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "0", "STATIC_ROOT": str(root)},
        check=True,
        timeout=600,
    )
    return root


@pytest.fixture
def served(tmp_path, redis_server, static_root):
    """gunicorn -c console/gunicorn.conf.py console.wsgi, DEBUG=0, on collected files."""
    env = _environment(redis_server.port, static_root)
    port = free_port()
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "console/gunicorn.conf.py"]
            + ["--bind", f"127.0.0.1:{port}", "--workers", "2", "console.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Served(f"http://127.0.0.1:{port}", log, proc)
    try:
        _wait_until_listening(server, time.monotonic() + 30)
        yield server
    finally:
        # A test may have restarted it under other settings: stop whichever runs now.
        server.proc.terminate()
        try:
            server.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.proc.kill()


def _login(served: Served, email: str) -> bytes:
    status, _, page = served.get("/accounts/login/")
    assert status == 200
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
    status, url, body = served.post_form(
        "/accounts/login/",
        {"csrfmiddlewaretoken": token, "username": email, "password": PASSWORD},
    )
    assert status == 200
    return url, body


def test_login_and_every_static_asset_the_main_page_references_is_served_for_a_year(
    served, settings
):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    org = make_org(name="Served Labs")
    make_member(org=org, user=make_user(email="owner@served.example"), role="owner")

    url, page = _login(served, "owner@served.example")
    assert url.endswith(f"/o/{org.slug}/"), url
    assert b"Served Labs" in page and b"owner@served.example" in page

    assets = sorted(set(re.findall(rb'(?:src|href)="(/static/[^"]+)"', page)))
    assert any(a.endswith(b".css") for a in assets) and any(a.endswith(b".js") for a in assets)
    assert any(a.startswith(b"/static/favicon.") for a in assets), assets
    for asset in assets:
        # Content-hashed names of every kind (styles, scripts, the favicon): a new deploy
        # is a new URL, so a year's caching is safe.
        assert re.search(rb"\.[0-9a-f]{12}\.[a-z0-9]+$", asset), asset
        status, headers, body = served.get(asset.decode(), {"Accept-Encoding": "gzip"})
        assert status == 200, asset
        assert body, asset
        cache = headers["Cache-Control"]
        max_age = int(re.search(r"max-age=(\d+)", cache).group(1))
        assert max_age >= YEAR and "immutable" in cache, (asset, cache)
        if asset.endswith((b".css", b".js", b".svg")):  # text: sent compressed
            assert headers.get("Content-Encoding") == "gzip", asset


def test_health_and_readiness_follow_redis_going_away_and_coming_back(served, redis_server):
    assert served.get("/healthz")[0] == 200
    status, headers, body = served.get("/readyz")
    assert status == 200, body
    assert json.loads(body) == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "redis": "ok", "static": "ok"},
    }
    assert headers["Cache-Control"] == "no-store"

    redis_server.kill()
    status, _, body = served.get("/readyz")
    assert status == 503
    answer = json.loads(body)
    assert answer["status"] == "unavailable"
    assert answer["checks"]["redis"] == "unreachable"
    assert answer["checks"]["database"] == "ok"
    # Nothing about what runs where: no versions, hosts or ports.
    assert str(redis_server.port).encode() not in body and b"127.0.0.1" not in body
    # Alive all the same: the process answers, so nobody restarts it for Redis' sake.
    assert served.get("/healthz")[0] == 200

    redis_server.start()
    deadline = time.monotonic() + 15
    while served.get("/readyz")[0] != 200:
        assert time.monotonic() < deadline, "readyz stayed 503 after Redis came back"
        time.sleep(0.2)


def test_logs_are_json_lines_carrying_the_callers_request_id(served):
    status, headers, _ = served.get("/accounts/login/", {"X-Request-ID": "lb-trace-42"})
    assert status == 200
    assert headers["X-Request-ID"] == "lb-trace-42"
    status, headers, _ = served.get("/accounts/login/", {"X-Request-ID": "<script>" + "x" * 200})
    made = headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)

    deadline = time.monotonic() + 5
    # Access lines are written after each answer is sent: wait for both.
    while not all(any(rid in line for line in served.log_lines()) for rid in ("lb-trace-42", made)):
        assert time.monotonic() < deadline, served.log.read_text()[-2000:]
        time.sleep(0.1)
    records = [json.loads(line) for line in served.log_lines()]  # every line is JSON
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    access = [r for r in records if r["logger"] == "gunicorn.access"]
    assert any("lb-trace-42" in r["message"] and "/accounts/login/" in r["message"] for r in access)
    assert any(made in r["message"] for r in access)


def test_the_probes_answer_a_load_balancer_in_production_mode(served, static_root, redis_server):
    """Probes come by IP address over plain HTTP: no redirect to HTTPS, no host check."""
    served.proc.terminate()
    served.proc.wait(timeout=30)
    env = {
        **_environment(redis_server.port, static_root),
        "CONSOLE_MODE": "production",
        "ALLOWED_HOSTS": "console.example",
        # The proxy is elsewhere: this test's own requests come straight to gunicorn.
        "FORWARDED_ALLOW_IPS": "192.0.2.10",
    }
    port = free_port()
    with served.log.open("a") as out:
        served.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "console/gunicorn.conf.py"]
            + ["--bind", f"127.0.0.1:{port}", "--workers", "1", "console.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served.base = f"http://127.0.0.1:{port}"
    _wait_until_listening(served, time.monotonic() + 30)
    assert served.get("/readyz")[0] == 200
    # Everything else is redirected to HTTPS, or refused for an unknown host, as before.
    assert _status_of(port, "/accounts/login/", "console.example") == (
        301,
        "https://console.example/accounts/login/",
    )
    assert _status_of(port, "/accounts/login/", "127.0.0.1")[0] == 400
    # A client that is not the proxy cannot claim HTTPS with the proxy's header.
    assert _status_of(
        port, "/accounts/login/", "console.example", {"X-Forwarded-Proto": "https"}
    ) == (301, "https://console.example/accounts/login/")


def _status_of(
    port: int, path: str, host: str, headers: dict | None = None
) -> tuple[int, str | None]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        connection.request("GET", path, headers={"Host": host, **(headers or {})})
        response = connection.getresponse()
        return response.status, response.getheader("Location")
    finally:
        connection.close()


def test_api_clients_keep_their_connection_and_a_revoked_key_is_refused_by_every_worker(served):
    """Two worker processes, eight kept-open connections spread over them: each call on a
    connection reuses it, and once the key is revoked (here, in a third process) every
    connection is answered 401 within two seconds."""
    from accounts.services import apikey_revoke
    from tests.factories import make_api_key

    org = make_org(name="Kept Labs")
    key, secret = make_api_key(org=org)
    host, port = served.base.removeprefix("http://").split(":")
    connections = [http.client.HTTPConnection(host, int(port), timeout=15) for _ in range(8)]
    headers = {"Authorization": f"Bearer {secret}"}

    def call(conn: http.client.HTTPConnection) -> int:
        conn.request("GET", "/api/v1/account", headers=headers)
        response = conn.getresponse()
        response.read()
        assert not response.will_close, response.getheader("Connection")
        return response.status

    for _ in range(3):  # the same connections, again and again: kept open
        assert [call(conn) for conn in connections] == [200] * 8
    socks = [conn.sock for conn in connections]

    apikey_revoke(key=key)
    revoked_at = time.monotonic()
    refused: set[int] = set()
    while len(refused) < len(connections):
        assert time.monotonic() - revoked_at < 2.5, f"{len(refused)} of 8 refuse the key"
        for n, conn in enumerate(connections):
            if n not in refused and call(conn) == 401:
                refused.add(n)
        time.sleep(0.05)
    assert [conn.sock for conn in connections] == socks  # never reconnected
    for conn in connections:
        conn.close()
