"""A real OpenID Connect provider for the single sign-on tests: django-allauth's idp.oidc
served by `runserver` on loopback in a second process (never a mock of the protocol)."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "provider-password"  # seed.py's people


@contextmanager
def serve(*, port: int, folder: Path, redirect_uris: list[str]) -> Iterator[dict[str, str]]:
    """Migrate, seed and serve a provider at http://127.0.0.1:PORT until the block ends;
    yields the environment its settings read (to run commands against its database)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.accounts.oidc_provider.settings",
        "OIDC_PROVIDER_DB": str(folder / "provider.sqlite3"),
        "OIDC_PROVIDER_KEY": pem,
        "PYTHONPATH": str(ROOT),
    }
    env.pop("DATABASE_URL", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    run = {"env": env, "cwd": ROOT, "check": True, "capture_output": True}
    subprocess.run([sys.executable, "-m", "django", "migrate", "-v0"], **run)
    seed = [sys.executable, "-m", "tests.accounts.oidc_provider.seed", *redirect_uris]
    subprocess.run(seed, **run)
    server = subprocess.Popen(
        [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the test OIDC provider did not start") from None
                time.sleep(0.2)
        yield env
    finally:
        server.terminate()
        server.wait(timeout=10)
