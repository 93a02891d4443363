"""Accounts' models, one module per concept; every name is importable from here."""

from accounts.models.audit import (
    AuditAction,
    AuditEvent,
    AuditEventQuerySet,
    AuditLogAppendOnly,
)
from accounts.models.invitations import INVITATION_LIFETIME_DAYS, Invitation
from accounts.models.keys import (
    SESSION_TOKEN_LIFETIME_DAYS,
    APIKey,
    APIKeyKind,
    IdempotencyRecord,
    SessionToken,
)
from accounts.models.organizations import (
    BILLING_DETAILS_ROLES,
    FINANCE_ROLES,
    KEY_ROLES,
    MANAGER_ROLES,
    PROJECT_LIMITABLE_ROLES,
    TIER_MONTHLY_TOKENS,
    TIER_OVERAGE_ALLOWED,
    Membership,
    Organization,
    Role,
    SSODomain,
    SSOProvider,
    Tier,
)
from accounts.models.people import ColorScheme, User, UserManager
from accounts.models.projects import (
    DEFAULT_PROJECT_NAME,
    Project,
    ProjectMembership,
    ProjectRole,
)

__all__ = [
    "BILLING_DETAILS_ROLES",
    "DEFAULT_PROJECT_NAME",
    "FINANCE_ROLES",
    "INVITATION_LIFETIME_DAYS",
    "KEY_ROLES",
    "MANAGER_ROLES",
    "PROJECT_LIMITABLE_ROLES",
    "SESSION_TOKEN_LIFETIME_DAYS",
    "TIER_MONTHLY_TOKENS",
    "TIER_OVERAGE_ALLOWED",
    "APIKey",
    "APIKeyKind",
    "AuditAction",
    "AuditEvent",
    "AuditEventQuerySet",
    "AuditLogAppendOnly",
    "ColorScheme",
    "IdempotencyRecord",
    "Invitation",
    "Membership",
    "Organization",
    "Project",
    "ProjectMembership",
    "ProjectRole",
    "Role",
    "SSODomain",
    "SSOProvider",
    "SessionToken",
    "Tier",
    "User",
    "UserManager",
]
