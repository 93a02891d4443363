"""Authorize and a concurrent debit of the balance, interleaved deterministically on
PostgreSQL: a usage batch is ingested in a transaction that then stays open (holding what
ingestion locked) while the gateway asks; the answer must count the debit, whether it
waits for the transaction or not."""

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction

from billing.models import CreditAccount
from ingest.services.ingest import usage_records_ingest
from tests.spend.conftest import post, race_query

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

AUTHORIZE = "/api/v1/usage/authorize"


def test_authorize_sees_a_debit_made_while_it_waited(client, race_org):
    org, ingest_key, gateway_secret = race_org.org, race_org.ingest_key, race_org.gateway_secret
    debited, release = threading.Event(), threading.Event()
    errors: list[Exception] = []

    def ingest_and_hold() -> None:
        try:
            with transaction.atomic():
                record = race_query("q-8", 8)
                result = usage_records_ingest(org=org, records=[record], api_key=ingest_key)
                assert result.accepted == ["q-8"], result.rejected
                debited.set()
                release.wait(timeout=10)
                time.sleep(1.5)  # the authorize below is sent meanwhile
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
            debited.set()
        finally:
            connection.close()

    writer = threading.Thread(target=ingest_and_hold)
    writer.start()
    assert debited.wait(timeout=10)
    release.set()
    # 5 credits asked; 12 - 8 = 4 left once the batch commits.
    response = post(
        client,
        AUTHORIZE,
        {"model": "llama-3.1-8b", "input_tokens": 5000, "max_output_tokens": 0},
        gateway_secret,
    )
    writer.join()
    assert errors == []
    assert CreditAccount.objects.get(organization=org).balance == Decimal(4)
    assert response.status_code == 402, response.content
    assert response.json()["reason"] == "insufficient_balance"
    assert response.json()["limit"] == "4"
