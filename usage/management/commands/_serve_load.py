"""The load bench_serve drives: writers posting batches and logged-in readers loading
pages, over plain HTTP (standard library only), plus the stack it drives (gunicorn and
a Celery worker as child processes).

The load generator shares the machine with the server, so it is kept cheap: batch
bodies are serialized once up front with a placeholder where each batch's id prefix
goes (a bytes replace per batch makes every record id new), and the clients are threads
doing blocking I/O.
"""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

# Where each batch's prefix goes in a template's record ids ("~batch~-17").
PLACEHOLDER = "~batch~"
_CSRF_FIELD = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (share in 0..1) of the values; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


class Client:
    """One HTTP/1.1 connection to the server, reopened when the server closes it (gunicorn's
    sync workers close after each answer), with the cookies it was given."""

    def __init__(self, port: int):
        self.port = port
        self.conn: http.client.HTTPConnection | None = None
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, bytes]:
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt == 2:
                    raise
                continue  # a connection the server had closed: once more on a new one
            for cookie in response.headers.get_all("Set-Cookie") or []:
                name, _, rest = cookie.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
            if response.will_close:
                self.close()
            return response.status, data
        raise AssertionError("unreachable")

    def login(self, email: str, password: str) -> None:
        status, page = self.request("GET", "/accounts/login/")
        token = _CSRF_FIELD.search(page)
        if status != 200 or token is None:
            raise RuntimeError(f"login page answered {status} without a CSRF field")
        form = urlencode(
            {"csrfmiddlewaretoken": token.group(1), "username": email, "password": password}
        )
        status, _ = self.request(
            "POST",
            "/accounts/login/",
            form.encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        if status != 302 or "sessionid" not in self.cookies:
            raise RuntimeError(f"login answered {status}, not a redirect with a session")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@dataclass
class Template:
    """A batch's records with PLACEHOLDER in their ids, and its body serialized once."""

    records: list[dict]
    body: bytes
    credits: object  # Decimal: the records' prices, computed by the bench independently


@dataclass
class SentBatch:
    template: int
    prefix: str
    latency: float
    finished: float
    accepted: int
    duplicates: int
    rejected: int


@dataclass
class WriterLog:
    sent: list[SentBatch] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def writer(
    *,
    port: int,
    number: int,
    run: str,
    secret: str,
    templates: list[Template],
    deadline: float,
    log: WriterLog,
) -> None:
    """Post batches of new records until the deadline; a failed post is sent again (the
    same ids: ingestion is idempotent) so every batch lands exactly once."""
    client = Client(port)
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    seq = 0
    while time.monotonic() < deadline:
        index = (number + seq) % len(templates)
        prefix = f"{run}w{number}b{seq}"
        body = templates[index].body.replace(PLACEHOLDER.encode(), prefix.encode())
        seq += 1
        for _attempt in range(3):
            started = time.monotonic()
            try:
                status, data = client.request("POST", "/api/v1/usage/records", body, headers)
            except (http.client.HTTPException, OSError) as exc:
                log.errors.append(f"{prefix}: {type(exc).__name__}: {exc}")
                continue
            finished = time.monotonic()
            if status != 200:
                log.errors.append(f"{prefix}: HTTP {status} {data[:200]!r}")
                continue
            answer = json.loads(data)
            log.sent.append(
                SentBatch(
                    template=index,
                    prefix=prefix,
                    latency=finished - started,
                    finished=finished,
                    accepted=len(answer["accepted"]),
                    duplicates=len(answer["duplicates"]),
                    rejected=len(answer["rejected"]),
                )
            )
            break
        else:
            log.errors.append(f"{prefix}: gave up after 3 attempts")
    client.close()


@dataclass
class ReaderLog:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def reader(
    *,
    port: int,
    cookies: dict[str, str],
    paths: list[str],
    stop: threading.Event,
    pause: float,
    log: ReaderLog,
) -> None:
    """A logged-in person (their session's cookies) loading the pages in turn, pausing
    between them, until stopped."""
    client = Client(port)
    client.cookies = dict(cookies)
    n = 0
    while not stop.is_set():
        path = paths[n % len(paths)]
        n += 1
        started = time.monotonic()
        try:
            status, _ = client.request("GET", path)
        except (http.client.HTTPException, OSError) as exc:
            log.errors.append(f"{path}: {type(exc).__name__}: {exc}")
            continue
        if status == 200:
            log.latencies.append(time.monotonic() - started)
        else:
            log.errors.append(f"{path}: HTTP {status}")
        stop.wait(pause)
    client.close()


def readers_run(
    *, sessions: list[dict[str, str]], stop: threading.Event, **kwargs
) -> tuple[list[threading.Thread], list[ReaderLog]]:
    """One reader thread per logged-in session."""
    logs = [ReaderLog() for _ in sessions]
    threads = [
        threading.Thread(
            target=reader,
            kwargs={**kwargs, "cookies": cookies, "stop": stop, "log": log},
            daemon=True,
        )
        for cookies, log in zip(sessions, logs, strict=True)
    ]
    for thread in threads:
        thread.start()
    return threads, logs


# --- The stack ----------------------------------------------------------------------------


class ServerDown(Exception):
    """The server under test exited or never answered (the message holds its log's tail)."""


class Stack:
    """gunicorn (the repo's production config) and a Celery worker, as child processes
    whose output goes to files in `logs`; stopped by their own process ids."""

    def __init__(self, *, base_dir: Path, env: dict[str, str], logs: Path):
        self.base_dir, self.env, self.logs = base_dir, env, logs
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str]) -> None:
        out = (self.logs / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            [sys.executable, "-m", *args],
            cwd=self.base_dir,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self, name: str) -> bool:
        return self.procs[name].poll() is None

    def tail(self, name: str, lines: int = 15) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def serving(self, port: int, path: str = "/healthz", timeout: float = 60) -> None:
        """Wait until gunicorn answers 200 at `path`; ServerDown with its log if it exits
        or stays silent for `timeout` seconds."""
        client = Client(port)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if not self.alive("gunicorn"):
                    raise ServerDown("gunicorn exited:\n" + self.tail("gunicorn"))
                try:
                    if client.request("GET", path)[0] == 200:
                        return
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise ServerDown(f"no answer within {timeout:.0f} s:\n" + self.tail("gunicorn"))
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
