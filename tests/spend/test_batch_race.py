"""A no-overdraft batch and an authorization placed while the batch runs, interleaved
deterministically on PostgreSQL: the batch is paused once it has worked out what it may
spend, the gateway asks for the same credits, then the batch goes on. Whatever the order,
what the gateway was allowed and what the batch accepted never together pass the balance."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from billing.models import CreditAccount, PriceModel
from ingest.services import ingest
from ingest.services.ingest import usage_records_ingest
from spend.services.counter_keys import counters_enabled
from spend.services.counters_rebuild import counters_drift
from tests.factories import grant_credits, make_api_key, make_org
from tests.spend.conftest import post, race_query

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

AUTHORIZE = "/api/v1/usage/authorize"


@pytest.mark.parametrize("pause", ["after_its_allowance", "before_its_allowance"])
def test_a_batch_and_an_authorize_never_promise_the_same_credits(
    client, monkeypatch, pause, race_org
):
    org, ingest_key, gateway_secret = race_org.org, race_org.ingest_key, race_org.gateway_secret
    # Warm the counters (a first authorize builds them); its 0.001 stays held.
    warm = post(
        client,
        AUTHORIZE,
        {"model": "llama-3.1-8b", "input_tokens": 1, "max_output_tokens": 0},
        gateway_secret,
    )
    assert warm.status_code == 200, warm.content

    decided, asked = threading.Event(), threading.Event()

    def pause_after(run):
        def paused(*args, **kwargs):
            answer = run(*args, **kwargs)
            decided.set()
            # The authorize runs now; on the database's path it waits for this batch's
            # lock, so the pause ends after a while whatever happens.
            asked.wait(timeout=4)
            return answer

        return paused

    if pause == "after_its_allowance":
        monkeypatch.setattr(ingest._Limits, "__init__", pause_after(ingest._Limits.__init__))
    else:  # the batch holds the spend lock and has read the live reservations
        monkeypatch.setattr(ingest, "stored_look_up", pause_after(ingest.stored_look_up))
    outcome: dict = {}

    def ingest_batch() -> None:
        try:
            record = race_query("q-8", 8)
            outcome["result"] = usage_records_ingest(org=org, records=[record], api_key=ingest_key)
        except Exception as exc:  # pragma: no cover - reported below
            outcome["error"] = exc
        finally:
            decided.set()
            connection.close()

    writer = threading.Thread(target=ingest_batch)
    writer.start()
    assert decided.wait(timeout=10)
    # 5 credits asked while the batch of 8 is between its decision and its commit.
    response = post(
        client,
        AUTHORIZE,
        {"model": "llama-3.1-8b", "input_tokens": 5000, "max_output_tokens": 0},
        gateway_secret,
    )
    asked.set()
    writer.join()
    assert "error" not in outcome, outcome
    result = outcome["result"]
    promised = Decimal(5) if response.status_code == 200 else Decimal(0)
    accepted = Decimal(8) if result.accepted == ["q-8"] else Decimal(0)
    balance = CreditAccount.objects.get(organization=org).balance
    assert response.status_code in (200, 402), response.content
    assert promised + accepted <= Decimal("11.999"), (response.json(), result.rejected, balance)
    # One of the two got the credits, never neither.
    assert promised + accepted in (Decimal(5), Decimal(8))
    if accepted == 0:
        assert [r.field for r in result.rejected] == ["credits"]
    else:
        assert balance == Decimal(4)
    if counters_enabled():
        # The counters decided: the authorize before the batch took its credits, or after.
        if pause == "after_its_allowance":
            assert response.status_code == 402 and accepted == 8
            assert response.json()["limit"] == "3.999"
        else:
            assert response.status_code == 200 and accepted == 0
            assert "6.999 credits left" in result.rejected[0].error
        assert counters_drift(org=org) == {"spend_counter_drift": 0}


def _authorize(client, secret: str, credits: int | str):
    tokens = int(Decimal(credits) * 1000)
    body = {"model": "llama-3.1-8b", "input_tokens": tokens, "max_output_tokens": 0}
    return post(client, AUTHORIZE, body, secret)


@pytest.fixture
def counted(client):
    """A no-overdraft organization with 12 credits and its spend counters built."""
    if not counters_enabled():
        pytest.skip("the spend counters need Redis (REDIS_URL)")
    PriceModel.objects.filter(name="llama-3.1-8b").update(
        input_price_per_million=Decimal(1000), output_price_per_million=Decimal(1000)
    )
    org = make_org(allow_overdraft=False)
    grant_credits(org=org, amount="12")
    key, secret = make_api_key(org=org, name="gateway")
    first = _authorize(client, secret, 2)
    assert first.status_code == 200, first.content
    return org, key, secret, first.json()["reservation"]


def test_a_batch_spends_its_own_reservation_and_no_one_elses(client, counted):
    org, key, secret, reservation = counted
    assert _authorize(client, secret, 7).status_code == 200  # 3 left
    # Its own 2 held are the batch's to spend (2 + 3), the other 7 held are not: 5 of 6.
    result = usage_records_ingest(
        org=org,
        records=[race_query("a", 4, reservation), race_query("b", 2), race_query("c", 1)],
        api_key=key,
    )
    assert result.accepted == ["a", "c"]
    assert [(r.id, r.field) for r in result.rejected] == [("b", "credits")]
    assert CreditAccount.objects.get(organization=org).balance == Decimal(7)
    assert counters_drift(org=org) == {"spend_counter_drift": 0}
    # 7 left, all held: nothing more for anyone.
    assert _authorize(client, secret, "0.001").status_code == 402


def test_a_batch_that_fails_gives_back_the_credits_it_took(client, counted, monkeypatch):
    org, key, secret, _reservation = counted

    def fail(*args, **kwargs):
        raise RuntimeError("the write failed")

    monkeypatch.setattr(ingest, "batch_write", fail)
    with pytest.raises(RuntimeError):
        usage_records_ingest(org=org, records=[race_query("a", 8)], api_key=key)
    assert CreditAccount.objects.get(organization=org).balance == Decimal(12)
    assert counters_drift(org=org) == {"spend_counter_drift": 0}
    # 12 less the 2 held: 10 are there to be reserved, not one more.
    assert _authorize(client, secret, "10.001").status_code == 402
    assert _authorize(client, secret, 10).status_code == 200
