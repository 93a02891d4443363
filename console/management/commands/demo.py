import logging

from django.core.management import call_command
from django.core.management.base import BaseCommand

from console.demo import demo_seed


class Command(BaseCommand):
    help = "Migrate, load the demo organizations and print the logins (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--serve", action="store_true", help="then start the server")
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument("--no-migrate", action="store_true")

    def handle(self, *args, **opts):
        if not opts["no_migrate"]:
            call_command("migrate", interactive=False, verbosity=0)
        # Seeding posts hundreds of ledger entries and batches; their INFO lines would
        # bury the login this command exists to print.
        quiet = [logging.getLogger(name) for name in ("billing", "usage", "accounts")]
        levels = [logger.level for logger in quiet]
        for logger in quiet:
            logger.setLevel(logging.WARNING)
        try:
            logins = demo_seed()
        finally:
            for logger, level in zip(quiet, levels, strict=True):
                logger.setLevel(level)
        host, _, port = opts["addrport"].rpartition(":")
        self.stdout.write(f"URL: http://{host or '127.0.0.1'}:{port}/")
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
        # A member with an authenticator app: add the secret to one, sign in with its code.
        self.stdout.write(f"Two-factor email: {logins.two_factor_email}")
        self.stdout.write(f"Two-factor password: {logins.password}")
        self.stdout.write(f"Two-factor TOTP secret: {logins.two_factor_secret}")
        if opts["serve"]:
            call_command("runserver", opts["addrport"], use_reloader=False)
