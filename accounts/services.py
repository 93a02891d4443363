"""Writes for accounts: organizations, owners and memberships."""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.audit import audit_record
from accounts.credential_cache import credentials_cache_clear
from accounts.credentials import secret_generate, secret_hash
from accounts.models import (
    SESSION_TOKEN_LIFETIME_DAYS,
    APIKey,
    APIKeyKind,
    AuditAction,
    ColorScheme,
    IdempotencyRecord,
    Membership,
    Organization,
    Project,
    Role,
    SessionToken,
    Tier,
    User,
)
from accounts.projects import ProjectError, project_default_for
from accounts.signals import organization_created


@dataclass(frozen=True)
class NewOrganization:
    organization: Organization
    owner: User
    password: str | None  # the owner's password when this call set it, else None


def password_generate() -> str:
    """A random password a person can still copy by hand."""
    return secrets.token_urlsafe(12)


def organization_slug_for(*, name: str) -> str:
    """A unique slug for a new organization's name."""
    base = slugify(name)[:50] or "org"
    slug, n = base, 2
    while Organization.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def user_get_or_create(*, email: str, password: str | None = None) -> tuple[User, str | None]:
    """The user with this email; a new one gets the password given or a generated one."""
    email = User.objects.normalize_email(email).lower()
    user = User.objects.filter(email=email).first()
    if user is not None:
        return user, None
    password = password or password_generate()
    return User.objects.create_user(email=email, password=password), password


@transaction.atomic
def membership_set(*, organization: Organization, user: User, role: str) -> Membership:
    """Put the user in the organization with this role (idempotent)."""
    membership, _ = Membership.objects.update_or_create(
        organization=organization, user=user, defaults={"role": role}
    )
    return membership


@transaction.atomic
def organization_create(
    *,
    name: str,
    tier: str = Tier.FREE,
    owner_email: str,
    owner_password: str | None = None,
    slug: str | None = None,
    time_zone: str = "UTC",
) -> NewOrganization:
    """Create an organization and make owner_email its owner (creating the user if new)."""
    if tier not in Tier.values:
        raise ValueError(f"Unknown tier {tier!r}; choose one of {', '.join(Tier.values)}")
    organization = Organization.objects.create(
        name=name,
        slug=slug or organization_slug_for(name=name),
        tier=tier,
        time_zone=time_zone,
    )
    owner, password = user_get_or_create(email=owner_email, password=owner_password)
    membership_set(organization=organization, user=owner, role=Role.OWNER)
    project_default_for(org=organization)
    organization_created.send(sender=organization_created, organization=organization)
    return NewOrganization(organization=organization, owner=owner, password=password)


# API keys ------------------------------------------------------------------------------

API_KEY_PREFIX = "sk-av"
# A key's last-used time is written at most this often, so a busy key costs no write
# per request.
API_KEY_LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class IssuedKey:
    key: APIKey
    secret: str  # shown to the person once; only its hash is stored


@transaction.atomic
def apikey_create(
    *,
    org: Organization,
    name: str,
    kind: str = APIKeyKind.WORKSPACE,
    user: User | None = None,
    created_by: User | None = None,
    secret: str | None = None,
    project: Project | None = None,
) -> IssuedKey:
    """Issue an API key in a project (the organization's Default when none is given) and
    return its secret once; only the secret's hash is stored.

    `secret` is for the demo's deterministic key only; everything else lets it be drawn.
    """
    name = name.strip()
    if not name:
        raise ValueError("A key needs a name")
    if kind not in APIKeyKind.values:
        raise ValueError(f"Unknown key kind {kind!r}")
    if kind == APIKeyKind.PERSONAL and user is None:
        raise ValueError("A personal key belongs to a person")
    if kind == APIKeyKind.WORKSPACE:
        user = None
    if project is None:
        project = project_default_for(org=org)
    elif project.organization_id != org.pk:
        raise ProjectError("No such project in this organization.", field="project")
    elif project.is_archived:
        raise ProjectError(
            f"The project {project.name} is archived: its keys do not work.", field="project"
        )
    secret = secret or secret_generate(prefix=API_KEY_PREFIX)
    key = APIKey.objects.create(
        organization=org,
        project=project,
        name=name[:100],
        kind=kind,
        user=user,
        prefix=API_KEY_PREFIX,
        last_four=secret[-4:],
        secret_hash=secret_hash(secret),
        created_by=created_by,
    )
    audit_record(
        org=org,
        actor=created_by,
        action=AuditAction.API_KEY_CREATED,
        summary=f"Created {key.get_kind_display().lower()} {key.name} ({key.display}) "
        f"in {project.name}",
        target=f"api_key:{key.pk}",
        data={
            "name": key.name,
            "kind": key.kind,
            "display": key.display,
            "project": project.pk,
        },
    )
    return IssuedKey(key=key, secret=secret)


@transaction.atomic
def apikey_revoke(*, key: APIKey, actor: User | None = None) -> APIKey:
    """Revoke the key from now on (idempotent: the first revocation time stays)."""
    now = timezone.now()
    revoked = APIKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now)
    credentials_cache_clear()
    key.refresh_from_db(fields=["revoked_at"])
    if revoked:
        audit_record(
            org=key.organization,
            actor=actor,
            action=AuditAction.API_KEY_REVOKED,
            summary=f"Revoked {key.name} ({key.display})",
            target=f"api_key:{key.pk}",
        )
    return key


def apikey_mark_used(*, key: APIKey, at: datetime | None = None) -> None:
    """Record that the key was just used (at most one write a minute per key)."""
    at = at or timezone.now()
    if key.last_used_at is not None and at - key.last_used_at < API_KEY_LAST_USED_RESOLUTION:
        return
    APIKey.objects.filter(pk=key.pk).update(last_used_at=at)
    key.last_used_at = at
    # A request's key is a copy of the one the API keeps for a second or so
    # (accounts.credential_cache): the kept one learns the write too.
    kept = getattr(key, "kept_original", None)
    if kept is not None:
        kept.last_used_at = at


# Leaving: removed members and deactivated people lose their credentials ------------------


def _credentials_revoke(*, user: User, org: Organization | None, at: datetime) -> tuple[int, int]:
    """Revoke the person's personal API keys and session tokens (in org, or everywhere)."""
    keys = APIKey.objects.filter(user=user, kind=APIKeyKind.PERSONAL, revoked_at__isnull=True)
    tokens = SessionToken.objects.filter(user=user, revoked_at__isnull=True)
    if org is not None:
        keys, tokens = keys.filter(organization=org), tokens.filter(organization=org)
    revoked = keys.update(revoked_at=at), tokens.update(revoked_at=at)
    credentials_cache_clear()
    return revoked


@transaction.atomic
def member_credentials_revoke(*, user: User, org: Organization | None = None) -> tuple[int, int]:
    """Revoke the person's personal keys and session tokens in org (None: in every
    organization); returns (keys, tokens) revoked. Workspace keys stay: they belong to
    the organization, not to the person who made them."""
    return _credentials_revoke(user=user, org=org, at=timezone.now())


@transaction.atomic
def personal_keys_revoke(*, user: User, org: Organization) -> int:
    """Revoke the person's personal API keys in org (their role there no longer has
    keys); their session tokens stay. Returns how many were revoked."""
    return APIKey.objects.filter(
        user=user, organization=org, kind=APIKeyKind.PERSONAL, revoked_at__isnull=True
    ).update(revoked_at=timezone.now())


@transaction.atomic
def session_tokens_revoke_all(*, user: User) -> int:
    """Revoke every live session token of the person (after a password change)."""
    revoked = SessionToken.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    credentials_cache_clear()
    return revoked


@transaction.atomic
def membership_remove(*, membership: Membership) -> None:
    """Remove a member from the organization, revoking their personal API keys and
    session tokens there in the same transaction."""
    member_credentials_revoke(user=membership.user, org=membership.organization)
    membership.delete()


@transaction.atomic
def user_deactivate(*, user: User) -> User:
    """Deactivate the person (no login), revoking their personal API keys and session
    tokens in every organization in the same transaction."""
    User.objects.filter(pk=user.pk).update(is_active=False)
    credentials_cache_clear()
    user.is_active = False
    member_credentials_revoke(user=user)
    return user


# Account session tokens ------------------------------------------------------------------

SESSION_TOKEN_PREFIX = "st-av"  # noqa: S105 - a public prefix, not a secret


@dataclass(frozen=True)
class IssuedSessionToken:
    token: SessionToken
    secret: str  # shown to the person once; only its hash is stored


class SessionTokenUnusable(Exception):
    """A token that can no longer be renewed (expired or revoked); the message says which."""


def session_token_lifetime() -> timedelta:
    return timedelta(days=SESSION_TOKEN_LIFETIME_DAYS)


@transaction.atomic
def session_token_issue(
    *, user: User, org: Organization, name: str = "", at: datetime | None = None
) -> IssuedSessionToken:
    """Issue a 30-day session token for a member of org; the secret is returned once.

    Raises Membership.DoesNotExist when the user is not a member of the organization.
    """
    Membership.objects.get(user=user, organization=org)
    at = at or timezone.now()
    secret = secret_generate(prefix=SESSION_TOKEN_PREFIX)
    token = SessionToken.objects.create(
        user=user,
        organization=org,
        name=name.strip()[:100],
        prefix=SESSION_TOKEN_PREFIX,
        last_four=secret[-4:],
        token_hash=secret_hash(secret),
        created_at=at,
        expires_at=at + session_token_lifetime(),
    )
    audit_record(
        org=org,
        actor=user,
        action=AuditAction.SESSION_TOKEN_ISSUED,
        summary=f"Issued session token {token.display} for {user.email}",
        target=f"session_token:{token.pk}",
    )
    return IssuedSessionToken(token=token, secret=secret)


@transaction.atomic
def session_token_renew(*, token: SessionToken, at: datetime | None = None) -> SessionToken:
    """Extend a live token to 30 days from now (same secret). An expired or revoked token
    cannot be renewed (SessionTokenUnusable): issue a new one instead."""
    at = at or timezone.now()
    locked = SessionToken.objects.select_for_update().get(pk=token.pk)
    if locked.revoked_at is not None:
        raise SessionTokenUnusable("this session token was revoked")
    if locked.expires_at <= at:
        raise SessionTokenUnusable("this session token expired; issue a new one")
    locked.expires_at = at + session_token_lifetime()
    locked.renewed_at = at
    locked.save(update_fields=["expires_at", "renewed_at"])
    audit_record(
        org=locked.organization,
        actor=locked.user,
        action=AuditAction.SESSION_TOKEN_RENEWED,
        summary=f"Renewed session token {locked.display} until {locked.expires_at:%d %b %Y} UTC",
        target=f"session_token:{locked.pk}",
    )
    return locked


@transaction.atomic
def session_token_revoke(*, token: SessionToken, actor: User | None = None) -> SessionToken:
    """Revoke the token from now on (idempotent: the first revocation time stays).
    The actor defaults to the token's own person."""
    revoked = SessionToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    credentials_cache_clear()
    token.refresh_from_db(fields=["revoked_at"])
    if revoked:
        audit_record(
            org=token.organization,
            actor=actor or token.user,
            action=AuditAction.SESSION_TOKEN_REVOKED,
            summary=f"Revoked session token {token.display} of {token.user.email}",
            target=f"session_token:{token.pk}",
        )
    return token


def session_token_mark_used(*, token: SessionToken, at: datetime | None = None) -> None:
    """Record that the token was just used (at most one write a minute per token)."""
    at = at or timezone.now()
    if token.last_used_at is not None and at - token.last_used_at < API_KEY_LAST_USED_RESOLUTION:
        return
    SessionToken.objects.filter(pk=token.pk).update(last_used_at=at)
    token.last_used_at = at


# Idempotency-Key answers -------------------------------------------------------------------


def idempotency_record_save(
    *,
    org: Organization,
    endpoint: str,
    key: str,
    request_hash: str,
    status_code: int,
    response_body: dict,
) -> IdempotencyRecord:
    """Keep the first answer for (org, endpoint, key); a concurrent first answer wins."""
    from django.db import IntegrityError

    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(
                organization=org,
                endpoint=endpoint,
                key=key,
                request_hash=request_hash,
                status_code=status_code,
                response_body=response_body,
            )
    except IntegrityError:
        return IdempotencyRecord.objects.get(organization=org, endpoint=endpoint, key=key)


def user_color_scheme_set(*, user: User, color_scheme: str) -> User:
    """Remember the user's colour scheme ("" follows the device); refuses unknown values."""
    if color_scheme not in ColorScheme.values:
        raise ValueError(f"unknown colour scheme {color_scheme!r}")
    user.color_scheme = color_scheme
    user.save(update_fields=["color_scheme"])
    return user


@transaction.atomic
def operator_ensure(*, email: str, password: str) -> User:
    """A platform operator (a superuser for Django admin), as createsuperuser makes one;
    found again by email, so running it twice changes nothing."""
    email = User.objects.normalize_email(email).lower()
    user = User.objects.filter(email=email).first()
    if user is None:
        return User.objects.create_superuser(email=email, password=password)
    if not (user.is_staff and user.is_superuser):
        user.is_staff = user.is_superuser = True
        user.save(update_fields=["is_staff", "is_superuser"])
    return user
