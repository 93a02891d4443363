"""Private PostgreSQL servers for tests: a primary made with initdb in a temporary
directory and a streaming replica of it made with pg_basebackup, each on a free port.

Nothing of the machine's own PostgreSQL is used or changed. initdb refuses to run as
root, so as root the servers run as the `postgres` account (which owns the directory).
"""

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from tests.workers import free_port


def postgres_bindir() -> Path | None:
    """Where initdb, pg_ctl and pg_basebackup are: PG_BINDIR, else Debian's newest."""
    candidates = [os.environ.get("PG_BINDIR", "")]
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
    )[::-1]
    for candidate in candidates:
        if candidate and all(
            (Path(candidate) / tool).exists() for tool in ("initdb", "pg_ctl", "pg_basebackup")
        ):
            return Path(candidate)
    return None


def server_account() -> str | None:
    """The account the servers run as: ours, or `postgres` when we are root."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    try:
        return pwd.getpwnam("postgres").pw_name
    except KeyError:
        return None


# Fast and small: these servers hold a test's few rows and die with it.
SERVER_SETTINGS = [
    "listen_addresses=127.0.0.1",
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "shared_buffers=16MB",
    "max_connections=40",
]


class PrivateCluster:
    def __init__(self, bindir: Path, root: Path, name: str, account: str):
        self.bindir, self.account = bindir, account
        self.datadir = root / name
        self.socket_dir = root
        self.log = root / f"{name}.log"
        self.port = free_port()

    def _run(self, *args: str) -> None:
        user = self.account if os.geteuid() == 0 else None
        result = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            user=user,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.socket_dir,
        )
        if result.returncode:
            raise RuntimeError(f"{args[0]} failed: {result.stdout}{result.stderr}")

    def initdb(self) -> None:
        self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "--auth=trust", "-N")

    def basebackup_of(self, primary: "PrivateCluster") -> None:
        """A copy of the running primary that streams its WAL from it (-R: standby)."""
        self._run(
            "pg_basebackup",
            *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"),
            *("-D", str(self.datadir), "-R", "-X", "stream", "-c", "fast"),
        )

    def start(self) -> None:
        options = " ".join(
            f"-c {s}"
            for s in [
                *SERVER_SETTINGS,
                f"port={self.port}",
                f"unix_socket_directories={self.socket_dir}",
            ]
        )
        self._run(
            "pg_ctl", "-D", str(self.datadir), "-l", str(self.log), "-o", options, "-w", "start"
        )

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.url(database), autocommit=True, connect_timeout=5)


class PrimaryAndReplica:
    """A private primary and its streaming replica; stop() ends both and removes them."""

    def __init__(self, bindir: Path, account: str):
        self.root = Path(tempfile.mkdtemp(prefix="uc-replica-"))
        shutil.chown(self.root, user=account)
        self.primary = PrivateCluster(bindir, self.root, "primary", account)
        self.replica = PrivateCluster(bindir, self.root, "replica", account)

    def start_primary(self) -> None:
        self.primary.initdb()
        self.primary.start()

    def start_replica(self) -> None:
        self.replica.basebackup_of(self.primary)
        self.replica.start()

    def stop(self) -> None:
        for cluster in (self.replica, self.primary):
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                cluster.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def wait_for(condition, timeout: float, what: str, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(step)
