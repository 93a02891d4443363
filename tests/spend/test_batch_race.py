"""A no-overdraft batch and an authorization placed while the batch runs, interleaved
deterministically on PostgreSQL: the batch is paused once it has worked out what it may
spend, the gateway asks for the same credits, then the batch goes on. Whatever the order,
what the gateway was allowed and what the batch accepted never together pass the balance."""

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from billing.models import CreditAccount, PriceModel
from tests.factories import grant_credits, make_api_key, make_org
from tests.spend.conftest import post
from usage.services import ingest
from usage.services.ingest import usage_records_ingest

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

AUTHORIZE = "/api/v1/usage/authorize"


def test_a_batch_and_an_authorize_never_promise_the_same_credits(client, monkeypatch):
    # 1,000 credits per million tokens: a token costs 0.001 credits.
    PriceModel.objects.filter(name="llama-3.1-8b").update(
        input_price_per_million=Decimal(1000), output_price_per_million=Decimal(1000)
    )
    org = make_org(allow_overdraft=False)
    grant_credits(org=org, amount="12")
    ingest_key, _ = make_api_key(org=org, name="batch")
    _gateway_key, gateway_secret = make_api_key(org=org, name="gateway")
    # Warm the counters (a first authorize builds them); its 0.001 stays held.
    warm = post(
        client,
        AUTHORIZE,
        {"model": "llama-3.1-8b", "input_tokens": 1, "max_output_tokens": 0},
        gateway_secret,
    )
    assert warm.status_code == 200, warm.content

    decided, asked = threading.Event(), threading.Event()
    limits_init = ingest._Limits.__init__

    def limits_then_pause(self, *args, **kwargs):
        limits_init(self, *args, **kwargs)
        decided.set()
        # The authorize runs now; on the database's path it waits for this batch's lock,
        # so the pause ends after a while whatever happens.
        asked.wait(timeout=4)

    monkeypatch.setattr(ingest._Limits, "__init__", limits_then_pause)
    outcome: dict = {}

    def ingest_batch() -> None:
        try:
            record = {
                "id": "q-8",
                "kind": "query",
                "occurred_at": timezone.now().isoformat(),
                "model": "llama-3.1-8b",
                "input_tokens": 8000,  # 8 credits
                "output_tokens": 0,
            }
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
