"""Migrations stay linear: one leaf per app, one number per migration, no merge
migrations, and the models match them (makemigrations has nothing to write)."""

import re
from collections import Counter
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db.migrations.loader import MigrationLoader

PROJECT_APPS = ("core", "accounts", "billing", "usage", "rollups", "spend", "alerts", "console")


@pytest.fixture(scope="module")
def loader() -> MigrationLoader:
    return MigrationLoader(None, ignore_no_migrations=True)


@pytest.mark.parametrize("app", PROJECT_APPS)
def test_each_app_has_one_leaf(loader, app):
    assert len(loader.graph.leaf_nodes(app)) == 1, loader.graph.leaf_nodes(app)


@pytest.mark.parametrize("app", PROJECT_APPS)
def test_one_number_per_migration(loader, app):
    numbers = Counter(
        re.match(r"\d+", name).group() for (label, name) in loader.disk_migrations if label == app
    )
    assert [n for n, count in numbers.items() if count > 1] == []


@pytest.mark.parametrize("app", PROJECT_APPS)
def test_no_merge_migrations(loader, app):
    merges = [
        name
        for (label, name), migration in loader.disk_migrations.items()
        if label == app and sum(1 for dep in migration.dependencies if dep[0] == app) > 1
    ]
    assert merges == []


@pytest.mark.django_db
def test_models_match_the_migrations():
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)


@pytest.mark.parametrize("app", ["rollups", "spend"])
def test_models_moved_out_of_usage_keep_their_tables(app):
    """rollups and spend took their models over from usage without moving a row
    (docs/architecture.md): each keeps the table usage's migrations made."""
    tables = {model._meta.db_table for model in apps.get_app_config(app).get_models()}
    assert tables == {
        f"usage_{model._meta.model_name}" for model in apps.get_app_config(app).get_models()
    }
    assert tables
