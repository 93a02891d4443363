"""The benchmarks' organizations: made through the product's services, deleted with
everything that is theirs."""

import graphlib
import secrets
from dataclasses import dataclass
from decimal import Decimal

from django.apps import apps
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from bench.product import (
    APIKey,
    Controller,
    Organization,
    Role,
    Tier,
    User,
    apikey_create,
    controller_register,
    counters_drop,
    membership_set,
    organization_create,
    organization_grant_starting_credits,
)

STARTING_CREDITS = Decimal("1000000000")


def run_stamp() -> str:
    """A stamp unique to this run, for slugs, emails and record ids."""
    return timezone.now().strftime("%Y%m%d%H%M%S") + secrets.token_hex(2)


@dataclass
class BenchOrg:
    org: Organization
    owner: User
    email: str
    password: str
    key: APIKey
    secret: str
    controller: Controller  # registered as "bench-ctl"


def bench_org(stamp: str, *, slug: str = "") -> BenchOrg:
    """An enterprise organization (`slug`, else bench-<stamp>) with STARTING_CREDITS, a
    controller and an API key whose own limits are high enough that the benchmark is
    never throttled (the tier's defaults are left alone); its owner logs in with
    `password`."""
    password = secrets.token_urlsafe(12)
    slug = slug or f"bench-{stamp}"
    with transaction.atomic():
        new = organization_create(
            name=f"Bench {slug}",
            tier=Tier.ENTERPRISE,
            owner_email=f"owner@{slug}.example",
            owner_password=password,
            slug=slug,
        )
        org = new.organization
        organization_grant_starting_credits(org=org, amount=STARTING_CREDITS)
        controller = controller_register(org=org, name="bench-ctl", cores=64, memory_gb=256)
        issued = apikey_create(org=org, name="Benchmark", created_by=new.owner)
        issued.key.rate_limit_rpm, issued.key.rate_limit_tpm = 10**9, 10**15
        issued.key.save(update_fields=["rate_limit_rpm", "rate_limit_tpm"])
    return BenchOrg(
        org=org,
        owner=new.owner,
        email=new.owner.email,
        password=password,
        key=issued.key,
        secret=issued.secret,
        controller=controller.controller,
    )


@transaction.atomic
def kept_org(slug: str) -> Organization:
    """A benchmark organization kept between runs (bench_rollup, bench_scale; hundreds of
    them), made on first use with STARTING_CREDITS; its owner owner@<slug>.example has
    no password (the benchmarks log in in-process), which spares a password hash each."""
    org, created = Organization.objects.get_or_create(
        slug=slug, defaults={"name": slug, "tier": Tier.ENTERPRISE, "time_zone": "UTC"}
    )
    if created:
        owner, _ = User.objects.get_or_create(email=f"owner@{slug}.example")
        membership_set(organization=org, user=owner, role=Role.OWNER)
        organization_grant_starting_credits(org=org, amount=STARTING_CREDITS)
    return org


def organizations_delete(orgs: list[Organization]) -> None:
    """Delete the benchmark's organizations and all that is theirs: the rows of every
    table with a foreign key to the organization (found from the models, wherever they
    live), referring tables first, in SQL, since the audit log and the ledger refuse
    deletes through the ORM and a big organization's records are too many to load; then
    their owners who belong nowhere else, and the organization's spend counters."""
    tables = _organization_tables()
    for org in orgs:
        org_id = org.pk
        owners = list(User.objects.filter(memberships__organization=org))
        with transaction.atomic(), connection.cursor() as cursor:
            for table, column in tables:
                cursor.execute(f"DELETE FROM {table} WHERE {column} = %s", [org_id])  # noqa: S608
            org.delete()
            for user in owners:
                if not user.memberships.exists():
                    user.delete()
        counters_drop(org_id=org_id)


def _organization_tables() -> list[tuple[str, str]]:
    """(table, column) of every foreign key to Organization, a table that refers to
    another of them before it."""
    quote = connection.ops.quote_name
    columns: dict[type[Model], list[str]] = {}
    for model in apps.get_models():
        if model is Organization or model._meta.proxy or not model._meta.managed:
            continue
        for field in model._meta.concrete_fields:
            if field.is_relation and field.related_model is Organization:
                columns.setdefault(model, []).append(field.column or field.attname)
    order = graphlib.TopologicalSorter({model: set() for model in columns})
    for model in columns:
        for field in model._meta.concrete_fields:
            target = field.related_model if field.is_relation else None
            if target in columns and target is not model:
                order.add(target, model)  # the referring model goes first
    return [
        (quote(model._meta.db_table), quote(column))
        for model in order.static_order()
        for column in columns[model]
    ]
