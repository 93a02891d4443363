"""The schema stays shardable by organization (docs/scaling.md): every tenant table's
unique keys include organization_id, and its foreign keys point at tables that either
carry organization_id too (so the key can become (organization_id, x_id) on Citus) or
are reference tables. A new table has to be one or the other, on purpose."""

from django.apps import apps
from django.db import models
from django.db.models.expressions import F

from accounts.models import Organization

APPS = ("accounts", "billing", "usage", "rollups", "spend", "alerts")

# Reference tables: small, the same for every organization, copied to every node on Citus.
REFERENCE_TABLES = {
    # The tenants themselves: the slug is unique across organizations, and every tenant
    # table's foreign key to them is a foreign key to a reference table (allowed).
    "accounts.Organization",
    # People log in by email across organizations (a membership ties them to each).
    "accounts.User",
    # The price list: models, worker types, core-hour rates.
    "billing.PriceModel",
    "billing.WorkerType",
    "billing.CoreHourRate",
}

# Local tables on the coordinator: not tenant data, the same for everybody, read by key.
LOCAL_TABLES = {
    # Which months' raw record partitions retention dropped: partitions are cut by month
    # for all organizations at once (docs/scaling.md, docs/data-lifecycle.md "Partitioned history").
    "usage.RetainedMonth",
    # Single sign-on's email domains: looked up by the domain at sign-in, before any
    # organization is known, and each unique across all organizations (one organization
    # per domain). On Citus its link to the provider stays a plain column, not a foreign
    # key into the sharded providers.
    "accounts.SSODomain",
}

# Unique keys of tenant tables allowed without organization_id, each with its reason.
UNIQUE_WITHOUT_ORGANIZATION_ALLOWED: dict[str, str] = {
    # None today. The surrogate `id` primary key is the one exception and is checked
    # apart below: Citus turns it into PRIMARY KEY (organization_id, id), and the id's
    # sequence keeps it unique across shards anyway.
}


def _our_models():
    for label in APPS:
        yield from apps.get_app_config(label).get_models()


def _name(model) -> str:
    return f"{model._meta.app_label}.{model.__name__}"


def _organization_field(model):
    for field in model._meta.concrete_fields:
        if (
            field.is_relation
            and field.related_model is Organization
            and field.name == ("organization")
        ):
            return field
    return None


def _names_in(constraint: models.UniqueConstraint) -> set[str]:
    names = set(constraint.fields)
    for expression in constraint.expressions:
        stack = [expression]
        while stack:
            node = stack.pop()
            if isinstance(node, str):
                names.add(node)
            elif isinstance(node, F):
                names.add(node.name)
            else:
                stack.extend(getattr(node, "get_source_expressions", list)())
    return names


def _unique_keys(model) -> list[tuple[str, set[str]]]:
    keys = []
    for field in model._meta.concrete_fields:
        if field.unique and not field.primary_key:
            keys.append((field.name, {field.name}))
    for together in model._meta.unique_together:
        keys.append(("+".join(together), set(together)))
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint):
            keys.append((constraint.name, _names_in(constraint)))
    return keys


def test_every_table_is_a_tenant_table_or_a_listed_reference_table():
    unclassified = [
        _name(m)
        for m in _our_models()
        if _organization_field(m) is None and _name(m) not in REFERENCE_TABLES | LOCAL_TABLES
    ]
    assert unclassified == [], "add organization (tenant) or list it as a reference table"
    assert {m for m in REFERENCE_TABLES if not apps.get_model(m)} == set()


def test_every_unique_key_of_a_tenant_table_includes_the_organization():
    missing = []
    for model in _our_models():
        if _organization_field(model) is None:
            continue
        for name, fields in _unique_keys(model):
            key = f"{_name(model)}:{name}"
            if "organization" not in fields and key not in UNIQUE_WITHOUT_ORGANIZATION_ALLOWED:
                missing.append(key)
    assert missing == []


def test_a_tenant_tables_primary_key_is_its_organization_or_a_surrogate_id():
    for model in _our_models():
        if _organization_field(model) is None:
            continue
        pk = model._meta.pk
        if isinstance(pk, models.CompositePrimaryKey):  # already shardable if it leads
            assert pk.field_names[0] == "organization", _name(model)
            continue
        assert pk.name in {"organization", "id"}, _name(model)
        if pk.name == "id":
            assert isinstance(pk, models.AutoField | models.BigAutoField), _name(model)


def test_tenant_tables_point_only_at_tenant_or_reference_tables():
    wrong = []
    for model in _our_models():
        if _organization_field(model) is None:
            continue
        for field in model._meta.concrete_fields:
            if not field.is_relation:
                continue
            target = field.related_model
            if _name(target) in REFERENCE_TABLES or _organization_field(target) is not None:
                continue
            wrong.append(f"{_name(model)}.{field.name} -> {_name(target)}")
    assert wrong == []


def test_the_checks_would_catch_a_key_without_the_organization():
    from spend.models import RateLimitRefusal

    bad = models.UniqueConstraint(fields=["api_key", "minute"], name="x")
    assert "organization" not in _names_in(bad)
    assert any("organization" in f for _, f in _unique_keys(RateLimitRefusal))
