"""The panel's Usage by model counts queries only, says so, and its links into Explore
reproduce the figure clicked."""

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from tests.factories import make_member, make_org, make_query, make_user, make_worker_session

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 7, 15, 20, 30, tzinfo=UTC)


def test_a_model_link_shows_the_panels_credits_in_explore(client):
    with time_machine.travel(NOW, tick=False):
        org = make_org(time_zone="Europe/Paris")
        user = make_user()
        make_member(org=org, user=user)
        client.force_login(user)
        make_query(
            org=org, occurred_at=NOW - timedelta(days=3), model="llama-3.1-70b", credits="1.35"
        )
        # A worker session of the same model: Explore's credits by model count it, the
        # panel's query table does not.
        make_worker_session(
            org=org,
            started_at=NOW - timedelta(days=2, hours=2),
            ended_at=NOW - timedelta(days=2),
            model="llama-3.1-70b",
            credits="180.29",
        )
        # Outside the 30 days by 20 seconds: neither page counts it.
        make_query(
            org=org,
            occurred_at=NOW - timedelta(days=30, seconds=20),
            model="llama-3.1-70b",
            credits="7",
        )
        panel = client.get(f"/o/{org.slug}/usage/").content.decode()
        assert "Queries only: worker sessions and jobs are not counted here" in panel
        row = re.search(r'<tr><td><a href="([^"]+)" data-testid="model-explore">', panel)
        link = html.unescape(row.group(1))
        table = re.search(r'data-testid="models-table">(.*?)</table>', panel, re.S).group(1)
        assert ">1.35<" in table
        assert "kind=query" in link and "metric=credits" in link
        explore = client.get(link).content.decode()
    assert re.search(r'data-testid="explore-total">1.35<', explore), link
    assert "Counts queries only." in explore
