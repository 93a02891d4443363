"""`manage.py createorg`: an organization, its owner, starting credits and an API key
(spans accounts and billing, so it lives in the project package)."""

from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Tier
from accounts.services import apikey_create, organization_create
from billing.services import organization_grant_starting_credits


class Command(BaseCommand):
    help = "Create an organization with its owner; prints the owner's login and an API key."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--tier", required=True, choices=Tier.values)
        parser.add_argument("--owner", required=True, metavar="EMAIL")
        parser.add_argument("--password", help="the owner's password (generated if omitted)")
        parser.add_argument("--credits", default="0", help="starting credits (a grant)")
        parser.add_argument("--slug")

    def handle(self, *args, **opts):
        try:
            credits = Decimal(opts["credits"])
        except InvalidOperation as exc:
            raise CommandError(f"--credits must be a number, not {opts['credits']!r}") from exc
        if not credits.is_finite() or credits < 0:
            raise CommandError("--credits must be zero or a positive number")
        with transaction.atomic():
            new = organization_create(
                name=opts["name"],
                tier=opts["tier"],
                owner_email=opts["owner"],
                owner_password=opts["password"],
                slug=opts["slug"],
            )
            organization_grant_starting_credits(org=new.organization, amount=credits)
            issued = apikey_create(
                org=new.organization, name="Default workspace key", created_by=new.owner
            )
        org = new.organization
        self.stdout.write(f"Organization: {org.name} ({org.slug}, {org.get_tier_display()})")
        self.stdout.write(f"Email: {new.owner.email}")
        if new.password is not None:
            self.stdout.write(f"Password: {new.password}")
        else:
            self.stdout.write("Password: (unchanged: this user already existed)")
        # The secret is shown here once: only its hash is stored.
        self.stdout.write(f"API key: {issued.secret}")
