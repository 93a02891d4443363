"""The test database's address and a real Celery worker process, for the tests about
Celery and faults (PostgreSQL and Redis): one launcher, used by the fixture and by the
tests that kill and restart workers themselves."""

import os
import socket
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.db import connection


def current_database_url() -> str:
    """A DATABASE_URL for the database this test run is using (other processes need it)."""
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def celery_worker_start(
    queue: str, *, app: str = "console", env: dict[str, str] | None = None
) -> subprocess.Popen:
    """A solo-pool Celery worker on `queue`, against the test database; tasks it enqueues
    itself go to the same queue. `app` and `env`: another app module (e.g. one that
    patches services in the worker's process) and more environment."""
    env = {
        **os.environ,
        **(env or {}),
        "DATABASE_URL": current_database_url(),
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", app, "worker", "-Q", queue]
        + ["--pool", "solo", "--without-heartbeat", "--without-gossip", "--without-mingle"]
        + ["-l", "warning"],
        env=env,
        cwd=settings.BASE_DIR,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server of this test's own on a free port: nothing persisted."""

    def __init__(self, port: int):
        self.port = port
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                pytest.fail(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no goodbye to connected clients
        self.proc.wait(timeout=10)
