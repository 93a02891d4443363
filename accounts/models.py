from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra) -> "User":
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def get_by_natural_key(self, username: str) -> "User":
        # Emails are stored lower-cased; people type them any way they like.
        return self.get(email__iexact=username)

    def create_user(self, email: str, password: str | None = None, **extra) -> "User":
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra) -> "User":
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)


class ColorScheme(models.TextChoices):
    """The console's colours: the device's preference ("System") or one chosen for good."""

    SYSTEM = "", "System"
    LIGHT = "light", "Light"
    DARK = "dark", "Dark"


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in by email; belongs to organizations through memberships."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    # Remembered per user, on every device they log in from (the session chip sets it).
    color_scheme = models.CharField(
        max_length=5, choices=ColorScheme.choices, blank=True, default=ColorScheme.SYSTEM
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email


class Tier(models.TextChoices):
    FREE = "free", "Free"
    DEVELOPER = "developer", "Developer"
    STARTUP = "startup", "Startup"
    ENTERPRISE = "enterprise", "Enterprise"


# Monthly token allocation per tier (None: unlimited) and whether usage may pass it.
TIER_MONTHLY_TOKENS: dict[str, int | None] = {
    Tier.FREE: 100_000,
    Tier.DEVELOPER: 5_000_000,
    Tier.STARTUP: 25_000_000,
    Tier.ENTERPRISE: None,
}
TIER_OVERAGE_ALLOWED: dict[str, bool] = {
    Tier.FREE: False,
    Tier.DEVELOPER: True,
    Tier.STARTUP: True,
    Tier.ENTERPRISE: True,
}


class Organization(models.Model):
    """The account: owns credits, usage, keys and controllers."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    tier = models.CharField(max_length=20, choices=Tier.choices, default=Tier.FREE)
    time_zone = models.CharField(max_length=64, default="UTC")
    # Whether the credit balance may go below zero; the free tier never may.
    allow_overdraft = models.BooleanField(default=False)
    # Owners may require every member to have a second factor before any of its pages.
    require_two_factor = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def monthly_token_allocation(self) -> int | None:
        return TIER_MONTHLY_TOKENS[self.tier]

    @property
    def overage_allowed(self) -> bool:
        return TIER_OVERAGE_ALLOWED[self.tier]

    @property
    def may_overdraw(self) -> bool:
        return self.allow_overdraft and self.tier != Tier.FREE


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    # Finance: pays, keeps the billing details and documents; sees no API keys.
    BILLING = "billing", "Billing"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


# Roles that manage keys, settings, the team and read the audit log.
MANAGER_ROLES = frozenset({Role.OWNER, Role.ADMIN})
# Roles that add credits and read statements and receipts.
FINANCE_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.BILLING})
# Roles that change the billing details printed on documents.
BILLING_DETAILS_ROLES = frozenset({Role.OWNER, Role.BILLING})
# Roles that see the organization's API keys.
KEY_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.MEMBER, Role.VIEWER})


class Membership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organization__name", "user__email"]
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="uniq_membership"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def can_manage(self) -> bool:
        return self.role in MANAGER_ROLES

    @property
    def can_pay(self) -> bool:
        return self.role in FINANCE_ROLES

    @property
    def can_see_keys(self) -> bool:
        return self.role in KEY_ROLES

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER


class SSOProvider(models.Model):
    """An organization's OpenID Connect identity provider: people whose email is in one of
    its domains sign in there; the first sign-in makes them a member (default_role)."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="sso_provider"
    )
    issuer = models.URLField(max_length=300)
    client_id = models.CharField(max_length=200)
    # Fernet-encrypted with the key of the authenticator-app secrets (accounts/auth.py).
    client_secret_encrypted = models.TextField()
    default_role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    # Required: people of these domains cannot use a password, only the provider.
    required = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.issuer} for {self.organization}"

    @property
    def domains(self) -> list[str]:
        """The email domains this provider signs in, in the order the owner gave them."""
        return [row.domain for row in self.domain_rows.order_by("pk")]


class SSODomain(models.Model):
    """An email domain an organization's provider signs in; unique, so a domain belongs
    to one organization at most, even when two owners claim it at the same moment."""

    provider = models.ForeignKey(SSOProvider, on_delete=models.CASCADE, related_name="domain_rows")
    # Lower-cased, without the "@".
    domain = models.CharField(max_length=253, unique=True)

    def __str__(self) -> str:
        return self.domain


class APIKeyKind(models.TextChoices):
    WORKSPACE = "workspace", "Workspace key"
    PERSONAL = "personal", "Personal key"


class APIKey(models.Model):
    """A key programs send usage with. Only the secret's SHA-256 is stored; shown once."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=APIKeyKind.choices, default=APIKeyKind.WORKSPACE)
    # A personal key acts for this person (their queries default to their email).
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="api_keys"
    )
    prefix = models.CharField(max_length=12)
    last_four = models.CharField(max_length=4)
    # SHA-256 of the whole secret, hex. Secrets carry ~238 random bits, so a fast hash
    # is enough (nothing to brute-force) and lookups stay one indexed equality. Unique per
    # organization (a sharded schema can only enforce keys holding organization_id);
    # ~238 random bits make it unique everywhere all the same.
    secret_hash = models.CharField(max_length=64, editable=False)
    # Per-key rate limits; empty means the organization tier's default.
    rate_limit_rpm = models.PositiveIntegerField(null=True, blank=True)
    rate_limit_tpm = models.PositiveBigIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "secret_hash"], name="apikey_secret_per_org"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="apikey_org_created"),
            # Authentication finds a key by its hash alone.
            models.Index(fields=["secret_hash"], name="apikey_secret_hash"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.display})"

    @property
    def display(self) -> str:
        return f"{self.prefix}••••••••{self.last_four}"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


# How long an account session token lasts from when it is issued or last renewed.
SESSION_TOKEN_LIFETIME_DAYS = 30


class SessionToken(models.Model):
    """An account session token: a person's API access to one organization, valid for 30
    days, renewable until it expires, revocable. Only the secret's SHA-256 is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="session_tokens")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="session_tokens"
    )
    name = models.CharField(max_length=100, blank=True, default="")
    prefix = models.CharField(max_length=12)
    last_four = models.CharField(max_length=4)
    # Unique per organization, like an API key's hash (see APIKey.secret_hash).
    token_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    renewed_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("created_at")),
                name="session_token_expires_after_creation",
            ),
            models.UniqueConstraint(
                fields=["organization", "token_hash"], name="session_token_hash_per_org"
            ),
        ]
        indexes = [
            models.Index(
                fields=["user", "organization", "-created_at"], name="session_token_owner"
            ),
            # Authentication finds a token by its hash alone.
            models.Index(fields=["token_hash"], name="session_token_hash"),
        ]

    def __str__(self) -> str:
        return f"{self.name or 'Session token'} ({self.display})"

    @property
    def display(self) -> str:
        return f"{self.prefix}••••••••{self.last_four}"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_expired(self) -> bool:
        return timezone.now() >= self.expires_at

    @property
    def is_active(self) -> bool:
        return not self.is_revoked and not self.is_expired


class IdempotencyRecord(models.Model):
    """The first answer to an API request sent with an `Idempotency-Key`: the same key with
    the same body gets it again; the same key with another body is refused."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    endpoint = models.CharField(max_length=100)
    key = models.CharField(max_length=200)
    # HMAC of the canonical request body (it may hold card details: never stored as is).
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "endpoint", "key"], name="idempotency_key_per_endpoint"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.key} → {self.status_code}"


# Team: invitations -------------------------------------------------------------------------

INVITATION_LIFETIME_DAYS = 7


class Invitation(models.Model):
    """An invitation to join an organization with a role, sent by email as a signed link.

    The link carries the invitation's id and nonce; resending draws a new nonce (the old
    link stops working) and a new 7-day expiry. Accepting or revoking closes it for good.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices)
    nonce = models.CharField(max_length=32, editable=False)
    invited_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-sent_at", "-id"]
        constraints = [
            # One open invitation per address: inviting again renews it.
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="one_open_invitation_per_email",
            ),
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("sent_at")),
                name="invitation_expires_after_sending",
            ),
            models.CheckConstraint(
                condition=models.Q(accepted_at__isnull=True) | models.Q(revoked_at__isnull=True),
                name="invitation_accepted_or_revoked_not_both",
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=["owner", "admin", "billing", "member", "viewer"]),
                name="invitation_role_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.organization} ({self.role})"

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None

    @property
    def is_expired(self) -> bool:
        return timezone.now() >= self.expires_at

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        return "expired" if self.is_expired else "pending"


# Audit log ---------------------------------------------------------------------------------


class AuditAction(models.TextChoices):
    API_KEY_CREATED = "api_key.created", "API key created"
    API_KEY_REVOKED = "api_key.revoked", "API key revoked"
    SESSION_TOKEN_ISSUED = "session_token.issued", "Session token issued"
    SESSION_TOKEN_REVOKED = "session_token.revoked", "Session token revoked"
    MEMBER_INVITED = "member.invited", "Member invited"
    INVITATION_RESENT = "member.invitation_resent", "Invitation resent"
    INVITATION_REVOKED = "member.invitation_revoked", "Invitation revoked"
    MEMBER_JOINED = "member.joined", "Member joined"
    MEMBER_ROLE_CHANGED = "member.role_changed", "Role changed"
    MEMBER_REMOVED = "member.removed", "Member removed"
    PAYMENT_SUCCEEDED = "payment.succeeded", "Payment succeeded"
    PAYMENT_FAILED = "payment.failed", "Payment failed"
    PAYMENT_REFUNDED = "payment.refunded", "Payment refunded"
    PAYMENT_METHOD_SAVED = "payment_method.saved", "Card saved"
    AUTO_RECHARGE_ENABLED = "auto_recharge.enabled", "Auto-recharge turned on"
    AUTO_RECHARGE_DISABLED = "auto_recharge.disabled", "Auto-recharge turned off"
    ALERT_RULE_CREATED = "alert_rule.created", "Alert rule created"
    ALERT_RULE_UPDATED = "alert_rule.updated", "Alert rule changed"
    ALERT_RULE_DELETED = "alert_rule.deleted", "Alert rule deleted"
    CREDITS_ADJUSTED = "credits.adjusted", "Credits adjusted by an operator"
    BILLING_DETAILS_UPDATED = "billing_details.updated", "Billing details changed"
    TWO_FACTOR_POLICY_CHANGED = "two_factor.policy_changed", "Two-factor requirement changed"
    TWO_FACTOR_ADDED = "two_factor.added", "Second factor added"
    TWO_FACTOR_REMOVED = "two_factor.removed", "Second factor removed"
    SESSION_TOKEN_RENEWED = "session_token.renewed", "Session token renewed"
    BUDGET_CREATED = "budget.created", "Budget created"
    BUDGET_UPDATED = "budget.updated", "Budget changed"
    BUDGET_DELETED = "budget.deleted", "Budget deleted"
    API_KEY_PAUSED = "api_key.paused", "API key paused"
    API_KEY_RESUMED = "api_key.resumed", "API key resumed"
    CONTROLLER_CREATED = "controller.created", "Controller registered"
    CONTROLLER_TOKEN_ROTATED = "controller.token_rotated", "Controller token rotated"
    WEBHOOK_SECRET_ROTATED = "alerts.webhook_secret_rotated", "Webhook secret rotated"
    SSO_PROVIDER_CHANGED = "sso.provider_changed", "Single sign-on provider changed"


class AuditLogAppendOnly(Exception):
    """An attempt to change or delete an audit event."""


class AuditEventQuerySet(models.QuerySet):
    """Append-only: rows are created, never updated or deleted through the ORM."""

    def update(self, **kwargs):
        raise AuditLogAppendOnly("audit events cannot be changed")

    def delete(self):
        raise AuditLogAppendOnly("audit events cannot be deleted")


class AuditEvent(models.Model):
    """One change a person (or an operator) made to an organization: who, when, what and
    from which address. Written by accounts.audit.audit_record only; never changed."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="audit_events"
    )
    # The person; their email is kept as it was, so the row still says who after they go.
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_email = models.CharField(max_length=254, blank=True, default="")
    # True for changes made by the platform's operators in Django admin.
    by_operator = models.BooleanField(default=False)
    action = models.CharField(max_length=40, choices=AuditAction.choices)
    summary = models.CharField(max_length=300)
    # What it was done to: "api_key:12", "membership:3", "payment:8"...
    target = models.CharField(max_length=100, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="audit_org_time"),
            models.Index(fields=["organization", "action"], name="audit_org_action"),
            models.Index(fields=["organization", "actor"], name="audit_org_actor"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} by {self.actor_email or '-'}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AuditLogAppendOnly("audit events cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogAppendOnly("audit events cannot be deleted")
