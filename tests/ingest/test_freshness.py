"""Every page says how current its figures are, from the data (the newest batch received
or usage debit posted), not from the clock; and the panel links into the explorer."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from ingest.services.ingest import usage_records_ingest
from tests.factories import grant_credits, make_api_key, make_member, make_user

pytestmark = pytest.mark.django_db

SENT = datetime(2026, 11, 20, 9, 14, tzinfo=UTC)


@pytest.fixture
def owner_client(client):
    member = make_member(user=make_user())
    client.force_login(member.user)
    return client, member.organization


def _freshness(html: str) -> str:
    import re

    return re.sub(r"<[^>]+>", "", re.search(r'data-testid="freshness">(.*?)</p>', html, re.S)[1])


def test_pages_say_nothing_was_received_before_any_usage(owner_client):
    client, org = owner_client
    for path, text in [
        (f"/o/{org.slug}/", "No usage received yet"),
        (f"/o/{org.slug}/usage/", "No usage received yet"),
        (f"/o/{org.slug}/finance/", "No usage charged yet"),
    ]:
        assert _freshness(client.get(path).content.decode()) == text


def test_pages_show_when_the_newest_usage_arrived_not_the_time_now(owner_client):
    client, org = owner_client
    grant_credits(org=org, amount="100")
    key, _secret = make_api_key(org=org)
    with time_machine.travel(SENT, tick=False):
        record = {
            "id": "q-1",
            "kind": "query",
            "occurred_at": (SENT - timedelta(minutes=1)).isoformat(),
            "model": "llama-3.1-8b",
            "input_tokens": 10,
            "output_tokens": 20,
        }
        usage_records_ingest(org=org, api_key=key, records=[record])
    with time_machine.travel(SENT + timedelta(hours=3), tick=False):
        main = _freshness(client.get(f"/o/{org.slug}/").content.decode())
        panel = _freshness(client.get(f"/o/{org.slug}/usage/").content.decode())
        finance = _freshness(client.get(f"/o/{org.slug}/finance/").content.decode())
    assert main == "Includes usage received up to 20 Nov, 09:14 UTC"
    assert panel == "Live: includes usage received up to 20 Nov, 09:14 UTC"
    assert finance == "Includes usage charged up to 20 Nov, 09:14 UTC"


def test_the_panel_links_into_the_explorer_filtered(owner_client):
    client, org = owner_client
    key, _secret = make_api_key(org=org, name="Lab")
    from tests.factories import make_query

    make_query(org=org, occurred_at=datetime.now(UTC) - timedelta(hours=1), api_key=key)
    from tests.factories import make_job

    make_job(org=org, submitted_at=datetime.now(UTC) - timedelta(hours=1), api_key=key)
    html = client.get(f"/o/{org.slug}/usage/?window=7d").content.decode()
    assert f'href="/o/{org.slug}/usage/explore/?start=' in html  # Usage → Explore
    assert f"?api_key={key.pk}&amp;group_by=model&amp;start=" in html
    assert "?model=llama-3.1-8b&amp;kind=query&amp;metric=credits&amp;group_by=api_key" in html
    # Following a link opens the explorer with that filter applied.
    import re

    link = re.search(r'href="([^"]*api_key=[^"]*)" data-testid="key-explore"', html)[1]
    page = client.get(link.replace("&amp;", "&"))
    assert page.status_code == 200
    boxes = re.findall(r'<input type="checkbox" name="api_key"[^>]*>', page.content.decode())
    assert [b for b in boxes if " checked" in b] == [b for b in boxes if f'value="{key.pk}"' in b]
