"""The load the HTTP benchmarks drive, over plain HTTP (standard library only): writers
posting batches of records with an API key, and logged-in readers loading pages.

The load generator shares the machine with the server, so it is kept cheap: batch
bodies are serialized once up front with a placeholder where each batch's id prefix
goes (a bytes replace per batch makes every record id new), and the clients are threads
doing blocking I/O.
"""

import http.client
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
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
    """One HTTP/1.1 connection to the server, reopened when the server closes it, with the
    cookies it was given."""

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


def session(port: int, email: str, password: str) -> dict[str, str]:
    """The cookies of one login (a person logs in once and keeps the session)."""
    client = Client(port)
    client.login(email, password)
    client.close()
    return client.cookies


@dataclass
class Template:
    """A batch's records with PLACEHOLDER in their ids, and its body serialized once."""

    records: list[dict]
    body: bytes
    credits: Decimal  # the records' prices, computed by the benchmark independently

    def filled(self, prefix: str) -> list[dict]:
        """The records as a batch posted with this prefix holds them."""
        return [{**r, "id": r["id"].replace(PLACEHOLDER, prefix)} for r in self.records]


def templates(batches: list[list[dict]], price=None) -> list[Template]:
    """Each batch serialized once; `price(record)` gives the credits it should cost."""
    return [
        Template(
            records=records,
            body=json.dumps({"records": records}).encode(),
            credits=sum((price(r) for r in records), Decimal(0)) if price else Decimal(0),
        )
        for records in batches
    ]


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

    @property
    def accepted(self) -> int:
        return sum(b.accepted for b in self.sent)


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


def writers_run(
    *, port: int, secret: str, templates: list[Template], run: str, writers: int, seconds: float
) -> tuple[WriterLog, float]:
    """`writers` clients posting batches for `seconds` (the batches in flight at the
    deadline finish and count); the log and the seconds until the last answer."""
    log = WriterLog()
    started = time.monotonic()
    common = {"port": port, "run": run, "secret": secret, "templates": templates, "log": log}
    threads = [
        threading.Thread(
            target=writer,
            kwargs={**common, "number": n, "deadline": started + seconds},
            daemon=True,
        )
        for n in range(writers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return log, max((b.finished for b in log.sent), default=time.monotonic()) - started


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


class Readers:
    """One reader thread per logged-in session, from `with` until its end; `log` holds
    every reader's page times and errors afterwards."""

    def __init__(self, *, port: int, sessions: list[dict[str, str]], paths: list[str], pause):
        self.stop = threading.Event()
        self.logs = [ReaderLog() for _ in sessions]
        common = {"port": port, "paths": paths, "pause": pause, "stop": self.stop}
        self.threads = [
            threading.Thread(
                target=reader, kwargs={**common, "cookies": cookies, "log": log}, daemon=True
            )
            for cookies, log in zip(sessions, self.logs, strict=True)
        ]
        self.log = ReaderLog()

    def __enter__(self) -> "Readers":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)
        for log in self.logs:
            self.log.latencies += log.latencies
            self.log.errors += log.errors

    def run_for(self, seconds: float) -> ReaderLog:
        """Read for `seconds` and stop: every reader's pages."""
        with self:
            time.sleep(seconds)
        return self.log
