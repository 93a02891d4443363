"""Settings → Budgets and Usage → Estimate pages: figures, permissions, isolation."""

from decimal import Decimal

import pytest

from spend.models import Budget, KeyPause
from tests.factories import make_api_key, make_org

pytestmark = pytest.mark.django_db


def login(client, user):
    client.force_login(user)


def test_owner_sets_a_budget_and_the_card_shows_its_figures(client, spend, frozen):
    login(client, spend.owner)
    url = f"/o/{spend.org.slug}/usage/budgets/"
    response = client.post(
        url + "create",
        {"scope": "api_key", "api_key": spend.key.pk, "period": "day", "soft_limit": "1",
         "hard_limit": "2"},
    )  # fmt: skip
    assert response.status_code == 302, response.content
    budget = Budget.objects.get(organization=spend.org)
    assert (budget.soft_limit, budget.hard_limit) == (Decimal(1), Decimal(2))
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="budget-card"' in html and "Test key" in html
    partial = client.get(url, headers={"HX-Request": "true"})
    assert partial.content.decode().lstrip().startswith('<div id="budget-cards"')


def test_members_see_budgets_but_cannot_set_them_or_pause(client, spend):
    login(client, spend.member)
    url = f"/o/{spend.org.slug}/usage/budgets/"
    assert client.get(url).status_code == 200
    body = {"scope": "organization", "period": "day", "soft_limit": "1"}
    assert client.post(url + "create", body).status_code == 403
    assert client.post(f"/o/{spend.org.slug}/usage/keys/{spend.key.pk}/pause").status_code == 403
    assert not Budget.objects.exists() and not KeyPause.objects.exists()


def test_pause_and_resume_from_the_card_and_other_orgs_keys_are_404(client, spend):
    login(client, spend.owner)
    base = f"/o/{spend.org.slug}/usage/keys/"
    assert client.post(f"{base}{spend.key.pk}/pause").status_code == 302
    assert KeyPause.objects.filter(api_key=spend.key).exists()
    assert client.post(f"{base}{spend.key.pk}/resume").status_code == 302
    assert not KeyPause.objects.exists()
    other_key, _ = make_api_key(org=make_org())
    assert client.post(f"{base}{other_key.pk}/pause").status_code == 404
    theirs = Budget.objects.create(
        organization=other_key.organization, scope="organization", period="day", soft_limit=1
    )
    budgets = f"/o/{spend.org.slug}/usage/budgets/"
    assert client.post(f"{budgets}{theirs.pk}/remove").status_code == 404
    assert Budget.objects.filter(pk=theirs.pk).exists()


def test_the_estimator_page_shows_tokens_cost_and_budgets(client, spend):
    Budget.objects.create(organization=spend.org, scope="organization", period="month",
                          soft_limit=Decimal("0.001"))  # fmt: skip
    login(client, spend.owner)
    page = client.get(
        f"/o/{spend.org.slug}/usage/estimate/",
        {"model": "llama-3.1-8b", "prompt": "Explain quantum computing.", "max_output_tokens": 500},
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="estimate-input">9 tokens<' in html  # 5 tokens + 4 for the message
    assert 'data-testid="estimate-budgets"' in html
    bad = client.get(f"/o/{spend.org.slug}/usage/estimate/", {"model": "x", "prompt": "hi"})
    assert bad.status_code == 400


def test_a_budget_past_its_hard_level_is_shown_as_over_in_colour_and_words(client, spend):
    from ingest.services.ingest import usage_records_ingest
    from spend.services.budgets import budget_create

    budget_create(org=spend.org, scope="api_key", api_key_id=spend.key.pk, period="month",
                  soft_limit=Decimal("0.001"), hard_limit=Decimal("0.002"))  # fmt: skip
    budget_create(org=spend.org, scope="organization", period="month",
                  soft_limit=Decimal("0.005"), hard_limit=Decimal("1"))  # fmt: skip
    # 60,000 tokens of llama-3.1-8b at 0.10 a million: 0.006 credits.
    record = {"id": "q-1", "kind": "query", "occurred_at": "2026-11-20T11:00:00Z",
              "model": "llama-3.1-8b", "input_tokens": 60_000, "output_tokens": 0}  # fmt: skip
    usage_records_ingest(org=spend.org, records=[record], api_key=spend.key)
    login(client, spend.owner)
    html = client.get(f"/o/{spend.org.slug}/usage/budgets/").content.decode()
    key_card, org_card = html.split('data-testid="budget-card"')[1:3]
    assert 'data-state="over"' in key_card and "budget-over" in html
    # 0.006 spent against a hard level of 0.002: over by 0.004.
    assert "Over by 0.0040 credits" in key_card
    assert "requests are refused until it resets" in key_card
    # The organization's budget is past its soft level only: amber, and it says so.
    assert 'data-state="past_soft"' in org_card
    assert "120% of the soft level" in org_card and "nothing is refused" in org_card
    assert 'value="0.005"' in org_card and 'value="1"' in org_card  # levels as typed
