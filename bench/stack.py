"""The stack as docs/deploying.md runs it, started by a benchmark: collectstatic, gunicorn
with console/gunicorn.conf.py and DEBUG=0, and a Celery worker, against this process's
PostgreSQL database (the test database under pytest) and Redis. Each is a child process
whose output goes to a file in `logs`, stopped by the process id it was started with.

    with Stack("serve", workers=2) as stack:
        ... load http://127.0.0.1:{stack.port} ...
"""

import hashlib
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management.base import CommandError
from django.db import connection

from bench.load import Client, free_port


def services_required(command: str) -> None:
    """A CommandError unless this process has PostgreSQL and Redis, as production does."""
    if connection.vendor != "postgresql":
        raise CommandError(
            f"{command} measures the production stack: set DATABASE_URL to a PostgreSQL "
            "database (it refuses SQLite, whose one writer at a time is not what production "
            "runs)."
        )
    if not os.environ.get("REDIS_URL"):
        raise CommandError(
            f"{command} needs Redis (the cache, the rate limiter's counters and the Celery "
            "broker): set REDIS_URL, e.g. redis://127.0.0.1:6379/0."
        )


def database_url() -> str:
    """This process's database as a URL for the stack's processes."""
    db = connection.settings_dict
    auth = db["USER"] or ""
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Stack:
    """gunicorn and a Celery worker on a free loopback port; `env` adds to or overrides
    the environment they get (e.g. USAGE_BUCKETS=off)."""

    def __init__(
        self,
        name: str,
        *,
        workers: int | None = None,
        threads: int | None = None,
        worker_class: str | None = None,
        env: dict[str, str] | None = None,
    ):
        self.port = free_port()
        self.logs = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "DEBUG": "0",
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            # Tasks of this run go to a queue of its own: other workers on the same Redis
            # never take them, and this worker takes no one else's.
            "CELERY_TASK_DEFAULT_QUEUE": f"bench-{self.port}-{os.getpid()}",
            "CELERY_TASK_ALWAYS_EAGER": "false",
        }
        for option, value in (("WORKERS", workers), ("THREADS", threads)):
            if value:
                self.env[f"GUNICORN_{option}"] = str(value)
        if worker_class:
            self.env["GUNICORN_WORKER_CLASS"] = worker_class
        self.env.update(env or {})
        self.procs: dict[str, subprocess.Popen] = {}

    def __enter__(self) -> "Stack":
        self.env["STATIC_ROOT"] = static_collected(self.env)
        try:
            self._start("gunicorn", ["gunicorn", "-c", "console/gunicorn.conf.py", "console.wsgi"])
            queue = self.env["CELERY_TASK_DEFAULT_QUEUE"]
            self._start(
                "celery",
                ["celery", "-A", "console", "worker", "-Q", queue, "--concurrency", "1"]
                + ["-l", "warning"],
            )
            self._serving("/accounts/login/")
            if not self._alive("celery"):
                raise CommandError("the Celery worker exited:\n" + self._tail("celery"))
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def workers(self) -> int:
        """gunicorn's processes: GUNICORN_WORKERS, else its config's 2 × cores + 1."""
        return int(self.env.get("GUNICORN_WORKERS") or 2 * multiprocessing.cpu_count() + 1)

    def describe(self) -> str:
        overrides = {k: v for k, v in self.env.items() if k.startswith("GUNICORN_")}
        return (
            f"gunicorn (console/gunicorn.conf.py, {self.workers} workers, {overrides}, DEBUG=0) "
            f"on 127.0.0.1:{self.port}, a Celery worker, PostgreSQL, Redis; "
            f"{os.cpu_count()} CPUs; logs in {self.logs}"
        )

    def _start(self, name: str, args: list[str]) -> None:
        out = (self.logs / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            [sys.executable, "-m", *args],
            cwd=settings.BASE_DIR,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _alive(self, name: str) -> bool:
        return self.procs[name].poll() is None

    def _tail(self, name: str, lines: int = 15) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def _serving(self, path: str, timeout: float = 60) -> None:
        """Wait until gunicorn answers 200 at `path`, or say why not with its log."""
        client = Client(self.port)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if not self._alive("gunicorn"):
                    raise CommandError("gunicorn exited:\n" + self._tail("gunicorn"))
                try:
                    if client.request("GET", path)[0] == 200:
                        return
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise CommandError(
                        f"gunicorn gave no answer within {timeout:.0f} s:\n"
                        + self._tail("gunicorn")
                    )
                time.sleep(0.2)
        finally:
            client.close()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: the process group
                proc.wait(timeout=10)
        self.procs.clear()


def static_collected(env: dict[str, str]) -> str:
    """collectstatic's output for the static files as they are now, made once per content
    (its compression pass over the chart library is a minute of CPU) in a folder of the
    temporary directory named by the files' hash, which runs at once can share."""
    root = Path(tempfile.gettempdir()) / f"usage-console-bench-static-{os.getuid()}"
    done = root / _static_stamp()[:20]
    if (done / "staticfiles.json").exists():
        return str(done)
    root.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="collecting-", dir=root))
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=settings.BASE_DIR,
        env={**env, "STATIC_ROOT": str(work)},
        check=True,
        timeout=900,
    )
    try:
        work.rename(done)
    except OSError:  # another run collected the same files first
        shutil.rmtree(work, ignore_errors=True)
    return str(done)


def _static_stamp() -> str:
    """Every static file's path and content, hashed."""
    digest = hashlib.sha256()
    found = sorted(
        (path, storage.path(path))
        for finder in finders.get_finders()
        for path, storage in finder.list([])
    )
    for path, full in found:
        digest.update(f"{path}\0".encode())
        digest.update(Path(full).read_bytes())
    return digest.hexdigest()
