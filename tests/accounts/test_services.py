import pytest

from accounts.models import Organization, Role
from accounts.services import organization_create

pytestmark = pytest.mark.django_db


def test_organization_create_makes_the_owner_and_a_unique_slug():
    first = organization_create(name="Acme Labs", tier="startup", owner_email="a@acme.example")
    second = organization_create(name="Acme Labs", tier="free", owner_email="a@acme.example")
    assert first.organization.slug == "acme-labs"
    assert second.organization.slug == "acme-labs-2"
    assert first.password and second.password is None  # same person, password untouched
    assert first.owner == second.owner
    assert first.owner.memberships.filter(role=Role.OWNER).count() == 2


def test_unknown_tier_is_refused_before_anything_is_written():
    with pytest.raises(ValueError, match="Unknown tier"):
        organization_create(name="X", tier="gold", owner_email="x@example.com")
    assert not Organization.objects.exists()


@pytest.mark.parametrize(
    ("tier", "tokens", "overage"),
    [
        ("free", 100_000, False),
        ("developer", 5_000_000, True),
        ("startup", 25_000_000, True),
        ("enterprise", None, True),
    ],
)
def test_tier_allocations_match_the_reference(tier, tokens, overage):
    org = Organization(name="T", slug="t", tier=tier)
    assert org.monthly_token_allocation == tokens
    assert org.overage_allowed is overage
