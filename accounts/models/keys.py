"""Credentials: API keys, account session tokens, and Idempotency-Key answers."""

from django.db import models
from django.utils import timezone

from accounts.models.organizations import Organization
from accounts.models.people import User
from accounts.models.projects import Project


class APIKeyKind(models.TextChoices):
    WORKSPACE = "workspace", "Workspace key"
    PERSONAL = "personal", "Personal key"


class APIKey(models.Model):
    """A key programs send usage with. Only the secret's SHA-256 is stored; shown once."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_keys"
    )
    # The project the key works for: its usage, limits and visibility are the project's.
    project = models.ForeignKey(Project, on_delete=models.RESTRICT, related_name="api_keys")
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
