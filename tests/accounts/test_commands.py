import re
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import Membership, Organization, Role, User

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def table_snapshot() -> dict[str, list[tuple]]:
    """Every row of every project table, to compare two runs."""
    snapshot = {}
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names()):
            if table.startswith(("accounts_", "billing_", "usage_")):
                cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
                snapshot[table] = sorted(map(repr, cursor.fetchall()))
    return snapshot


def test_demo_prints_a_working_login(client):
    out = run("demo", "--no-migrate")
    url = re.search(r"^URL: (\S+)$", out, re.M).group(1)
    email = re.search(r"^Email: (\S+)$", out, re.M).group(1)
    password = re.search(r"^Password: (\S+)$", out, re.M).group(1)
    assert url.startswith("http://")
    response = client.post("/accounts/login/", {"username": email, "password": password})
    assert response.status_code == 302
    owner = User.objects.get(email=email)
    org = Membership.objects.get(user=owner, role=Role.OWNER, organization__slug="acme-labs")
    assert client.get(f"/o/{org.organization.slug}/").status_code == 200


def test_demo_twice_leaves_the_same_rows():
    # Both runs inside one hour: the demo's usage runs up to the current hour, so a rerun
    # in the next hour rightly adds that hour's records.
    with time_machine.travel(datetime(2026, 12, 7, 10, 20, tzinfo=UTC), tick=True):
        run("demo", "--no-migrate")
        first = table_snapshot()
        run("demo", "--no-migrate")
        assert table_snapshot() == first
    assert Organization.objects.count() >= 2


def test_demo_owner_cannot_open_the_second_organization(client):
    out = run("demo", "--no-migrate")
    email = re.search(r"^Email: (\S+)$", out, re.M).group(1)
    password = re.search(r"^Password: (\S+)$", out, re.M).group(1)
    client.post("/accounts/login/", {"username": email, "password": password})
    assert client.get("/o/globex/").status_code == 404


def test_createorg_makes_an_owner_who_can_log_in_and_grants_credits(client):
    out = run(
        "createorg",
        "--name",
        "Initech",
        "--tier",
        "developer",
        "--owner",
        "Bill@Initech.example",
        "--credits",
        "125.50",
    )
    email = re.search(r"^Email: (\S+)$", out, re.M).group(1)
    password = re.search(r"^Password: (\S+)$", out, re.M).group(1)
    assert email == "bill@initech.example"
    org = Organization.objects.get(name="Initech")
    assert org.tier == "developer"
    assert Membership.objects.get(organization=org).role == Role.OWNER
    from billing.selectors import credit_balance

    assert credit_balance(org=org) == Decimal("125.50")
    assert (
        client.post("/accounts/login/", {"username": email, "password": password}).status_code
        == 302
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tier", "platinum"], "invalid choice"),
        (["--credits", "lots"], "--credits must be a number"),
        (["--credits", "-5"], "zero or a positive"),
    ],
)
def test_createorg_refuses_bad_input_and_writes_nothing(args, message):
    base = {"--name": "Bad Co", "--tier": "free", "--owner": "x@bad.example"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    argv = [item for pair in base.items() for item in pair]
    with pytest.raises(CommandError, match=message):
        run("createorg", *argv)
    assert not Organization.objects.filter(name="Bad Co").exists()
    assert not User.objects.filter(email="x@bad.example").exists()
