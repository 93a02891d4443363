"""Reads off the primary, against a real streaming replica made here.

The test makes its own primary (initdb in a temporary directory, on a free port),
migrates a database on it, makes a replica with pg_basebackup -R (streaming), and
serves the console with gunicorn on both (DATABASE_URL and DATABASE_REPLICA_URL).
Which server answered is told by data: replay on the replica is paused, a row is
changed directly on the primary, and a page shows the old value only if the replica
served it. Nothing of the machine's own PostgreSQL is used or changed.
"""

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest
from django.conf import settings

from console.replica import STICKY_COOKIE
from tests.pg_clusters import PrimaryAndReplica, postgres_bindir, server_account, wait_for
from tests.workers import free_port

pytestmark = [pytest.mark.postgres]

ROOT = Path(settings.BASE_DIR)
MAX_LAG = 5.0
CHECK = 0.5
STICKY = 10
PASSWORD = "replica-test-password-42"


class Browser:
    def __init__(self, base: str):
        self.base = base
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str, *, fresh: bool = False, headers: dict | None = None) -> str:
        """GET a page; fresh: as a client that has written nothing lately (no sticky cookie)."""
        if fresh:
            for cookie in list(self.jar):
                if cookie.name == STICKY_COOKIE:
                    self.jar.clear(cookie.domain, cookie.path, cookie.name)
        request = urllib.request.Request(self.base + path, headers=headers or {})
        with self.opener.open(request, timeout=20) as response:
            assert response.status == 200
            return response.read().decode()

    def post(self, form_page: str, path: str, fields: dict) -> str:
        """Submit a form of form_page to path, as a person would (with its CSRF token)."""
        page = self.get(form_page)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": token, **fields}).encode()
        request = urllib.request.Request(
            self.base + path, data=body, headers={"Referer": self.base + path}
        )
        with self.opener.open(request, timeout=20) as response:
            return response.read().decode()

    def has_sticky_cookie(self) -> bool:
        return any(cookie.name == STICKY_COOKIE for cookie in self.jar)


class Stack:
    """The two servers, the console on them, and the organization it serves."""

    def __init__(self, pair: PrimaryAndReplica, base: str, slug: str, api_key: str):
        self.pair, self.base, self.slug, self.api_key = pair, base, slug, api_key
        self.primary_db = pair.primary.connect("uc")

    def on_replica(self, sql: str, params: tuple = ()):
        with self.pair.replica.connect("uc") as conn:
            return conn.execute(sql, params).fetchone()[0]

    def rename_on_primary(self, name: str) -> None:
        self.primary_db.execute(
            "UPDATE accounts_organization SET name = %s WHERE slug = %s", (name, self.slug)
        )

    def rename_and_replay(self, name: str) -> float:
        """Rename on the primary and wait until the replica has replayed it; returns when."""
        self.rename_on_primary(name)
        wait_for(
            lambda: (
                self.on_replica(
                    "SELECT name FROM accounts_organization WHERE slug = %s", (self.slug,)
                )
                == name
            ),
            10,
            "the replica replays the rename",
        )
        return time.monotonic()

    def pause_replay(self) -> None:
        self.on_replica("SELECT pg_wal_replay_pause()::text")
        wait_for(
            lambda: self.on_replica("SELECT pg_get_wal_replay_pause_state()") == "paused",
            10,
            "replay paused",
        )

    def resume_replay(self) -> None:
        self.on_replica("SELECT pg_wal_replay_resume()::text")

    def api_name(self) -> str:
        request = urllib.request.Request(
            self.base + "/api/v1/account", headers={"Authorization": f"Bearer {self.api_key}"}
        )
        with urllib.request.urlopen(request, timeout=20) as response:
            return json.loads(response.read())["name"]


def _environment(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_REPLICA_URL"}}
    return {**env, "DEBUG": "1", "LOG_FORMAT": "plain", "CELERY_TASK_ALWAYS_EAGER": "1", **extra}


def _manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    bindir, account = postgres_bindir(), server_account()
    if bindir is None:
        pytest.skip(
            "needs PostgreSQL's server programs (initdb, pg_ctl, pg_basebackup): "
            "apt-get install postgresql, or set PG_BINDIR"
        )
    if account is None:
        pytest.skip("running as root needs a `postgres` account to run the private servers")
    pair = PrimaryAndReplica(bindir, account)
    gunicorn = made = None
    try:
        pair.start_primary()
        with pair.primary.connect() as conn:
            conn.execute("CREATE DATABASE uc")
        env = _environment(DATABASE_URL=pair.primary.url("uc"))
        _manage(env, "migrate", "-v0")
        out = _manage(
            env,
            *("createorg", "--name", "Replica Labs", "--tier", "developer"),
            *("--owner", "owner@replica.example", "--password", PASSWORD),
        )
        slug = re.search(r"\(([a-z0-9-]+),", out).group(1)
        api_key = re.search(r"API key: (\S+)", out).group(1)
        # The replica is made after the schema and the organization exist: it starts as a
        # copy of them, and everything later reaches it by streaming.
        pair.start_replica()
        port = free_port()
        log = tmp_path_factory.mktemp("replica") / "gunicorn.log"
        served_env = {
            **env,
            "DATABASE_REPLICA_URL": pair.replica.url("uc"),
            "REPLICA_MAX_LAG_SECONDS": str(MAX_LAG),
            "REPLICA_CHECK_SECONDS": str(CHECK),
            "REPLICA_STICKY_SECONDS": str(STICKY),
        }
        with log.open("w") as out_file:
            gunicorn = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--workers", "1", "--timeout", "60"]
                + ["--bind", f"127.0.0.1:{port}", "console.wsgi"],
                cwd=ROOT,
                env=served_env,
                stdout=out_file,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"

        def answers():
            assert gunicorn.poll() is None, log.read_text()[-3000:]
            try:
                return urllib.request.urlopen(base + "/healthz", timeout=2).status == 200
            except OSError:
                return False

        wait_for(answers, 30, "gunicorn answers", step=0.1)
        made = Stack(pair, base, slug, api_key)
        yield made
    finally:
        if made is not None:
            made.primary_db.close()
        if gunicorn is not None:
            gunicorn.terminate()
            try:
                gunicorn.wait(timeout=20)
            except subprocess.TimeoutExpired:
                gunicorn.kill()
        pair.stop()


@pytest.fixture(scope="module")
def owner(stack):
    browser = Browser(stack.base)
    page = browser.post(
        "/accounts/login/",
        "/accounts/login/",
        {"username": "owner@replica.example", "password": PASSWORD},
    )
    assert "owner@replica.example" in page
    # Logging in is a write request: this browser now reads the primary for a while.
    assert browser.has_sticky_cookie()
    # The API key's last use is written once a minute: done now, not during the checks.
    stack.api_name()
    return browser


def test_reads_go_to_the_replica_and_a_client_that_wrote_reads_the_primary(stack, owner):
    home = f"/o/{stack.slug}/"
    replayed_at = stack.rename_and_replay("Replica Labs (replayed)")
    stack.pause_replay()
    try:
        stack.rename_on_primary("Replica Labs (primary only)")

        # A page and the read API, for clients that wrote nothing lately: the replica
        # answers (only it still has the old name).
        assert "Replica Labs (replayed)" in owner.get(home, fresh=True)
        assert stack.api_name() == "Replica Labs (replayed)"

        # The owner creates a key: a write, on the primary. Then, for STICKY seconds, this
        # browser reads the primary: its own key, and the name the replica has not got.
        created = owner.post(
            f"/o/{stack.slug}/settings/keys/",
            f"/o/{stack.slug}/settings/keys/create",
            {"name": "written-while-replay-paused", "kind": "workspace"},
        )
        assert "written-while-replay-paused" in created
        assert owner.has_sticky_cookie()
        keys = owner.get(f"/o/{stack.slug}/settings/keys/")
        assert "written-while-replay-paused" in keys
        assert "Replica Labs (primary only)" in keys
        # The same member in another browser (no sticky cookie) reads the replica.
        assert "written-while-replay-paused" not in owner.get(
            f"/o/{stack.slug}/settings/keys/", fresh=True
        )
        # All of it within the lag bound: the replica was in use, not skipped as lagging.
        assert time.monotonic() - replayed_at < MAX_LAG
    finally:
        stack.resume_replay()


def test_a_lagging_replica_sends_reads_to_the_primary_until_it_catches_up(stack, owner):
    home = f"/o/{stack.slug}/"
    replayed_at = stack.rename_and_replay("Lag (replayed)")
    stack.pause_replay()
    try:
        stack.rename_on_primary("Lag (primary only)")
        assert "Lag (replayed)" in owner.get(home, fresh=True)

        # Past the bound (plus one health check), the replica is skipped: the primary answers.
        time.sleep(max(0.0, replayed_at + MAX_LAG + CHECK + 0.3 - time.monotonic()))
        assert "Lag (primary only)" in owner.get(home, fresh=True)
        assert stack.api_name() == "Lag (primary only)"
    finally:
        stack.resume_replay()

    # Caught up: the replica is used again (paused once more, it serves the old name).
    stack.rename_and_replay("Caught up (replayed)")
    stack.pause_replay()
    try:
        stack.rename_on_primary("Caught up (primary only)")
        time.sleep(CHECK + 0.1)
        assert "Caught up (replayed)" in owner.get(home, fresh=True)
    finally:
        stack.resume_replay()


def test_a_stopped_replica_sends_reads_to_the_primary_without_an_error(stack, owner):
    home = f"/o/{stack.slug}/"
    stack.rename_and_replay("Stopped (replayed)")
    assert "Stopped (replayed)" in owner.get(home, fresh=True)

    stack.pair.replica.stop()
    stack.rename_on_primary("Stopped (primary)")
    # At once (the last health check still says well: the failed read is served again
    # from the primary) and after the next check (the replica is skipped).
    assert "Stopped (primary)" in owner.get(home, fresh=True)
    assert stack.api_name() == "Stopped (primary)"
    time.sleep(CHECK + 0.1)
    for _ in range(3):
        assert "Stopped (primary)" in owner.get(home, fresh=True)

    # Started again, it catches up and takes the reads back.
    stack.pair.replica.start()
    stack.rename_and_replay("Restarted (replayed)")
    stack.pause_replay()
    try:
        stack.rename_on_primary("Restarted (primary only)")
        time.sleep(CHECK + 0.1)
        assert "Restarted (replayed)" in owner.get(home, fresh=True)
    finally:
        stack.resume_replay()
