"""Migration from the schema before projects with the demo's data: every figure on every
usage and money page is the same after, and everything sits in the Default project.

The data is the demo's own (its keys, controllers and a few days of its usage, through
ingestion and the rollups, and a closed month's statement), made before projects existed:
an organization without the demo's other projects keeps everything in Default, exactly
what the schema before projects held. The pages are read, the projects' migrations
undone (today's code cannot render the schema before them) and run again, and the pages
read again: every figure must match, with the Default project chosen (`?project=`, once
the pages take it) too.
"""

import re
import uuid
from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.models import Project
from billing.models import Statement
from billing.services import statements_issue_due
from ingest.demo import usage_demo_seed
from rollups.models import JobBucket, JobDaily, QueryBucket, QueryDaily, WorkerDaily
from tests.factories import make_member, make_org
from usage.models import Controller, IngestBatch, Job, MatchingRun, Query, WorkerSession

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BEFORE_PROJECTS = [("accounts", "0009_sso_provider")]
# Two days of November and this one: November's statement is due.
NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
DAYS = 3
RECORDS = [Query, Job, WorkerSession, MatchingRun, Controller, IngestBatch]
# What changes from one rendering to the next without being a figure.
NOT_FIGURES = re.compile(
    r"csrf[\w-]*[\"']?\s*[:=]\s*[\"'][^\"']*[\"']|csrfmiddlewaretoken\"\s+value=\"[^\"]*\""
    r"|nonce=\"[^\"]*\"|/static/[^\"' ]*"
    # the chosen project, echoed in links (`next=`): an id, not a figure
    r"|project(?:=|%3D)\d+"
    # form values: the project switcher's and Explore's choices are ids (the Default
    # project made again by the forward migration takes a new one), not figures
    r"|value=\"\d+\""
    # what is left of the organization's monthly allocation: shown with All projects only
    # (a project's share of it would reveal the other projects' use), compared on its own
    r"|[\d,]+ tokens remain this month",
    re.IGNORECASE,
)
REMAIN = re.compile(r"[\d,]+ tokens remain this month")
FIGURE = re.compile(r"\d[\d,.:]*\d|\d")


def _urls(org, statement: Statement) -> list[str]:
    base = f"/o/{org.slug}/"
    month = "2026-11-01"
    return [
        base,
        base + "usage/",
        base + f"usage/?from={month}&to=2026-11-30",
        base + "usage/explore/",
        base + "usage/explore.csv",
        base + "usage/explore-groups.csv",
        base + "usage/timeline.csv",
        base + "finance/",
        base + "finance/transactions.csv",
        base + "finance/statements/",
        base + f"finance/statements/{statement.pk}/",
        base + f"finance/statements/{statement.pk}/csv",
    ]


def _figures(client, urls: list[str], *, query: str = "") -> dict[str, list[str]]:
    out = {}
    for url in urls:
        joined = url + (("&" if "?" in url else "?") + query if query else "")
        response = client.get(joined)
        assert response.status_code == 200, joined
        content = b"".join(response.streaming_content) if response.streaming else response.content
        body = NOT_FIGURES.sub("", content.decode())
        out[url] = FIGURE.findall(body)
    return out


def _fresh_cache(settings) -> None:
    """Pages cache some of their figures: read them anew, as after a deploy."""
    default = dict(settings.CACHES["default"])
    default["KEY_PREFIX"] = f"migrated-{uuid.uuid4().hex[:12]}"
    settings.CACHES = {**settings.CACHES, "default": default}


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets(executor) if callable(targets) else targets)


def test_every_page_figure_is_the_same_after_the_projects_migrations(client, settings):
    with time_machine.travel(NOW, tick=False):
        owner = make_member(org=make_org(name="Acme Labs", slug="acme-labs"))
        org = owner.organization
        usage_demo_seed(org=org, days=DAYS)
        statements_issue_due(org=org, now=NOW)
        statement = Statement.objects.get(organization=org)
        client.force_login(owner.user)
        urls = _urls(org, statement)
        before = _figures(client, urls)
        remain_before = REMAIN.findall(client.get(urls[1]).content.decode())
        records = {m.__name__: m.objects.filter(organization=org).count() for m in RECORDS}
        assert records["Query"] > 500 and records["Job"] > 20 and records["Controller"] == 3

        _migrate(BEFORE_PROJECTS)  # the schema before projects, with the same rows
        with connection.cursor() as cursor:
            columns = connection.introspection.get_table_description(cursor, "usage_query")
        assert "project_id" not in {c.name for c in columns}

        _migrate(lambda executor: executor.loader.graph.leaf_nodes())
        _fresh_cache(settings)
        (default,) = Project.objects.filter(organization=org)
        assert default.is_default and default.name == "Default"
        after = _figures(client, urls)
        under_default = _figures(client, urls, query=f"project={default.pk}")
        remain_after = REMAIN.findall(client.get(urls[1]).content.decode())
    assert len(remain_before) == 1 and remain_after == remain_before
    # Each page's figures, one by one, so a failure names the page.
    for url in urls:
        assert after[url] == before[url], url
        assert under_default[url] == before[url], url + " under Default"
    # Every row is the Default project's, and so are the rollups' sums.
    for model in RECORDS:
        rows = model.objects.filter(organization=org)
        assert rows.count() == records[model.__name__]
        assert not rows.exclude(project=default).exists(), model.__name__
    for model in (QueryDaily, JobDaily, WorkerDaily, QueryBucket, JobBucket):
        rows = model.objects.filter(organization=org)
        assert rows.exists() and not rows.exclude(project=default).exists(), model.__name__
