import logging
import threading
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from accounts.demo import DEMO_LIMITED_MEMBER
from console.demo import demo_keep_current, demo_seed

logger = logging.getLogger(__name__)

# While served, the demo's controllers beat this often (a controller is online while its
# last beat is younger than CONTROLLER_ONLINE_SECONDS, 300 by default).
HEARTBEAT_SECONDS = 60
# Loggers held at a level while the demo seeds (kombu warns that eager tasks have no
# broker host: true, and nothing to act on).
QUIET_WHILE_SEEDING = {
    "billing": logging.WARNING,
    "usage": logging.WARNING,
    "accounts": logging.WARNING,
    "celery": logging.WARNING,
    "kombu": logging.ERROR,
}


class Command(BaseCommand):
    help = "Migrate, load the demo organizations and print the logins (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--serve", action="store_true", help="then start the server")
        parser.add_argument(
            "--port", type=int, default=8000, help="the port to serve on (default 8000)"
        )
        parser.add_argument(
            "--host",
            default="127.0.0.1",
            help="the address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)",
        )
        parser.add_argument("--addrport", help="host:port in one (overrides --host and --port)")
        parser.add_argument("--no-migrate", action="store_true")

    def handle(self, *args, **opts):
        host, port = self._bind(opts)
        started = time.monotonic()
        # One line per step on stderr, so the user sees progress while stdout keeps the
        # login lines that scripts read.
        say = lambda step: self.stderr.write(f"demo: {step}", style_func=str)  # noqa: E731
        if not opts["no_migrate"]:
            say("migrating the database")
            call_command("migrate", interactive=False, verbosity=0)
        # Seeding posts hundreds of ledger entries and batches, and runs a task per
        # statement; their INFO lines would bury the login this command exists to print.
        quiet = {name: logging.getLogger(name) for name in QUIET_WHILE_SEEDING}
        levels = {name: quieted.level for name, quieted in quiet.items()}
        for name, quieted in quiet.items():
            quieted.setLevel(QUIET_WHILE_SEEDING[name])
        try:
            logins = demo_seed(progress=say)
        finally:
            for name, quieted in quiet.items():
                quieted.setLevel(levels[name])
        say(f"ready in {time.monotonic() - started:.0f} s")
        self.stdout.write(f"URL: http://{host}:{port}/")
        self.stdout.write(f"Email: {logins.email}")
        self.stdout.write(f"Password: {logins.password}")
        self.stdout.write(f"API key: {logins.api_key}")
        # Operators run the platform from Django admin (docs/operators.md).
        self.stdout.write(f"Operator email: {logins.operator_email}")
        self.stdout.write(f"Operator password: {logins.password}")
        self.stdout.write(
            f"Other organization (for trying isolation): {logins.other_organization.name}, "
            f"owner {logins.other_email}, same password"
        )
        # A member limited to one project sees only its keys (docs/projects.md).
        email, project, _ = DEMO_LIMITED_MEMBER
        self.stdout.write(f"Project-limited email: {email} (sees only {project}), same password")
        # A member with an authenticator app: add the secret to one, sign in with its code.
        self.stdout.write(f"Two-factor email: {logins.two_factor_email}")
        self.stdout.write(f"Two-factor password: {logins.password}")
        self.stdout.write(f"Two-factor TOTP secret: {logins.two_factor_secret}")
        if opts["serve"]:
            self._serve(host, port)

    def _bind(self, opts) -> tuple[str, int]:
        host, port = opts["host"], opts["port"]
        if opts["addrport"]:
            addr, _, number = opts["addrport"].rpartition(":")
            host = addr or host
            try:
                port = int(number)
            except ValueError:
                wrong = opts["addrport"]
                raise CommandError(f"--addrport wants host:port, not {wrong!r}") from None
        if not 0 < port < 65536:
            raise CommandError(f"--port must be 1 to 65535, not {port}")
        return host, port

    def _serve(self, host: str, port: int) -> None:
        # Links in emails (invitations, statements) lead where this server listens,
        # unless the environment says where people reach it.
        if not settings.SITE_URL_FROM_ENVIRONMENT:
            shown = "127.0.0.1" if host in {"0.0.0.0", "::", "[::]"} else host  # noqa: S104
            settings.SITE_URL = f"http://{shown}:{port}"
        stop = threading.Event()
        threading.Thread(
            target=_keep_current, args=(stop,), name="demo-keep-current", daemon=True
        ).start()
        try:
            call_command("runserver", f"{host}:{port}", use_reloader=False)
        finally:
            stop.set()


def _keep_current(stop: threading.Event) -> None:
    """Beat for the demo's controllers every minute; once an hour, bring the hour's usage
    and any month's statement just due. A failed round is logged and the next one tried."""
    last_hour = time.strftime("%Y%m%d%H", time.gmtime())
    while not stop.wait(HEARTBEAT_SECONDS):
        hour = time.strftime("%Y%m%d%H", time.gmtime())
        try:
            demo_keep_current(refresh=hour != last_hour)
            last_hour = hour
        except Exception:
            logger.exception("demo.keep_current.failed")
        finally:
            connections.close_all()
