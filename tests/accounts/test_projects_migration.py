"""The data migration that brings projects: on a database with organizations and keys,
every organization gets one Default project and every key lands in it."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("accounts", "0009_sso_provider")]
AFTER = [("accounts", "0012_apikey_project_required")]


@pytest.mark.django_db(transaction=True)
def test_existing_organizations_get_a_default_project_holding_their_keys():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    Organization = old.get_model("accounts", "Organization")
    APIKey = old.get_model("accounts", "APIKey")
    with_keys = Organization.objects.create(name="Keyed", slug="keyed")
    without = Organization.objects.create(name="Keyless", slug="keyless")
    for n in range(3):
        APIKey.objects.create(
            organization=with_keys,
            name=f"k{n}",
            prefix="sk-av",
            last_four=f"{n:04}",
            secret_hash=f"{n:064}",
        )

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    Project = new.get_model("accounts", "Project")
    NewKey = new.get_model("accounts", "APIKey")
    defaults = {
        p.organization_id: p
        for p in Project.objects.filter(organization__slug__in=["keyed", "keyless"])
    }
    assert {(p.name, p.is_default, p.archived_at) for p in defaults.values()} == {
        ("Default", True, None)
    }
    assert set(defaults) == {with_keys.pk, without.pk}
    keys = NewKey.objects.filter(organization_id=with_keys.pk)
    assert keys.count() == 3
    assert set(keys.values_list("project_id", flat=True)) == {defaults[with_keys.pk].pk}

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())  # back to today's schema
