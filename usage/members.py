"""Whose usage it is: the member an authorization or a usage record is attributed to.

A personal key is one person's credential, so everything sent with it is that person's:
a `member` it names is ignored (not refused: a record describes usage that already
happened, and refusing it would drop the charge; the gateway that stamps one member on
every request keeps working). Other keys name any member, or none.
"""

from accounts.models import APIKey, APIKeyKind


def member_normalize(member: str) -> str:
    """Emails compare case-insensitively; other member names as given, trimmed."""
    member = member.strip()
    return member.lower() if "@" in member else member


def key_owner(api_key: APIKey | None) -> str:
    """The email of a personal key's owner; "" for any other key (or none)."""
    if api_key is not None and api_key.kind == APIKeyKind.PERSONAL and api_key.user_id:
        return api_key.user.email if api_key.user else ""
    return ""


def member_attributed(*, owner: str, named: str) -> str:
    """The member to record: the key's owner when it has one, else the one named."""
    return member_normalize(owner or named)
