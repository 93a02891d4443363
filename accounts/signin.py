"""Sign-in's services and reads: a person's second factors, an organization's two-factor
requirement, and a person's console sessions (django-allauth's mfa and usersessions keep
the rows; docs/sign-in.md)."""

from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from allauth.mfa.utils import decrypt, is_mfa_enabled
from allauth.usersessions.models import UserSession
from django.db import transaction

from accounts.audit import audit_record
from accounts.models import AuditAction, Organization, User

SECOND_FACTORS = [Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN]
FACTOR_NAMES = {
    Authenticator.Type.TOTP: "authenticator app",
    Authenticator.Type.WEBAUTHN: "passkey",
    Authenticator.Type.RECOVERY_CODES: "recovery codes",
}


def user_has_two_factor(*, user: User) -> bool:
    """Whether the person signs in with a second factor (an app or a passkey)."""
    return is_mfa_enabled(user, SECOND_FACTORS)


def two_factor_required_missing(*, user: User, org: Organization) -> bool:
    """The organization requires a second factor and this person has none yet."""
    return org.require_two_factor and not user_has_two_factor(user=user)


def user_authenticators(*, user: User) -> dict[str, list[Authenticator]]:
    """The person's factors by kind: totp, webauthn (passkeys), recovery_codes."""
    found: dict[str, list[Authenticator]] = {kind: [] for kind in Authenticator.Type.values}
    for authenticator in Authenticator.objects.filter(user=user).order_by("created_at"):
        found[authenticator.type].append(authenticator)
    return found


@transaction.atomic
def user_totp_ensure(*, user: User) -> str:
    """Give the person an authenticator app (once) and return its base32 secret (the demo)."""
    existing = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
    if existing is not None:
        return decrypt(existing.data["secret"])
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return secret


@transaction.atomic
def organization_two_factor_set(*, org: Organization, required: bool, actor: User) -> Organization:
    """Require (or stop requiring) a second factor of every member; audited."""
    if org.require_two_factor == required:
        return org
    org.require_two_factor = required
    org.save(update_fields=["require_two_factor"])
    audit_record(
        org=org,
        action=AuditAction.TWO_FACTOR_POLICY_CHANGED,
        actor=actor,
        summary=(
            "Two-factor authentication required for every member"
            if required
            else "Two-factor authentication no longer required"
        ),
        data={"required": required},
    )
    return org


@transaction.atomic
def two_factor_change_record(*, user: User, kind: str, added: bool) -> None:
    """Audit a factor added or removed in every organization the person belongs to."""
    name = FACTOR_NAMES.get(kind, kind)
    action = AuditAction.TWO_FACTOR_ADDED if added else AuditAction.TWO_FACTOR_REMOVED
    summary = f"{user.email} {'added' if added else 'removed'} a second factor: {name}"
    for org in Organization.objects.filter(memberships__user=user):
        audit_record(
            org=org,
            action=action,
            actor=user,
            summary=summary,
            target=user.email,
            data={"kind": kind},
        )


# Console sessions ------------------------------------------------------------------------


def user_sessions_of(*, user: User) -> list[UserSession]:
    """The person's live console sessions, most recently seen first."""
    sessions = UserSession.objects.purge_and_list(user)
    return sorted(sessions, key=lambda s: s.last_seen_at, reverse=True)


def user_sessions_all(*, user: User):
    """The person's session rows (to look one up by id: another person's is not there)."""
    return UserSession.objects.filter(user=user)


def user_session_end(*, session: UserSession) -> None:
    """End one session: that browser is signed out at its next request."""
    session.end()


def user_sessions_end(*, user: User, keep_session_key: str | None = None) -> int:
    """End every session of the person but the one kept (None: all of them)."""
    ended = 0
    for session in UserSession.objects.filter(user=user).exclude(session_key=keep_session_key):
        session.end()
        ended += 1
    return ended
