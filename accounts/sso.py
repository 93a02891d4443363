"""Single sign-on with OpenID Connect, one identity provider per organization: its
registration (audited, the client secret encrypted), the discovery check, and the
authorization-code sign-in whose ID token PyJWT checks (signature by the provider's JWKS,
issuer, audience, expiry) before the email's domain and the nonce are (docs/sign-in.md)."""

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
import requests
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.auth import secret_decrypt, secret_encrypt
from accounts.models import (
    AuditAction,
    Membership,
    Organization,
    Role,
    SSODomain,
    SSOProvider,
    User,
)

# Asymmetric signatures only: an HS256 token would be signed with the client secret,
# which the console holds too, so it proves nothing about the provider.
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
HTTP_TIMEOUT = 10
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


TAKEN = "One of these domains already signs in to another organization."


class SSOError(Exception):
    """The provider could not be used or its answer was refused; the text is for people."""


@dataclass(frozen=True)
class SSOStart:
    """Where to send the browser, and what the callback must find in the session."""

    url: str
    state: str
    nonce: str
    # PKCE: a code stolen on its way back is useless without it.
    code_verifier: str


def email_domain(email: str) -> str:
    """The lower-cased domain of an email address ('' when there is none)."""
    _, _, domain = email.strip().rpartition("@")
    return domain.lower()


def sso_provider_of(*, org: Organization) -> SSOProvider | None:
    """The organization's identity provider, if it registered one."""
    return SSOProvider.objects.filter(organization=org).first()


def sso_provider_get(*, pk: int) -> SSOProvider | None:
    """A provider by id, with its organization (None once deleted)."""
    return SSOProvider.objects.select_related("organization").filter(pk=pk).first()


def sso_provider_for_email(*, email: str) -> SSOProvider | None:
    """The enabled provider whose domains hold this email's domain."""
    domain = email_domain(email)
    if not domain:
        return None
    return (
        SSOProvider.objects.select_related("organization")
        .filter(enabled=True, domain_rows__domain=domain)
        .first()
    )


def sso_domains_parse(text: str) -> list[str]:
    """Domains typed one per line or separated by commas, lower-cased; SSOError if one is not."""
    domains = []
    for raw in re.split(r"[\s,]+", text.strip()):
        domain = raw.strip().lower().lstrip("@")
        if not domain:
            continue
        if not _DOMAIN.match(domain):
            raise SSOError(f"“{raw}” is not a domain name.")
        if domain not in domains:
            domains.append(domain)
    if not domains:
        raise SSOError("Give at least one email domain.")
    return domains


@transaction.atomic
def sso_provider_save(
    *,
    org: Organization,
    actor: User,
    issuer: str,
    client_id: str,
    client_secret: str,
    domains: list[str],
    default_role: str,
    required: bool,
    enabled: bool,
) -> SSOProvider:
    """Register or change the provider (a blank secret keeps the stored one); audited."""
    issuer = issuer.strip().rstrip("/")
    # Plain http only on this machine's loopback (a provider under test): elsewhere the
    # code, the tokens and the client secret would cross the network in clear.
    parts = urlsplit(issuer)
    loopback = parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost", "::1"}
    if not parts.hostname or (parts.scheme != "https" and not loopback):
        raise SSOError("The issuer is the provider's URL, starting with https://.")
    if not client_id.strip():
        raise SSOError("Give the client id the provider issued.")
    if default_role not in Role.values or default_role == Role.OWNER:
        raise SSOError("Choose the role newcomers get (any but owner).")
    if SSODomain.objects.filter(domain__in=domains).exclude(provider__organization=org).exists():
        raise SSOError(TAKEN)
    provider = SSOProvider.objects.select_for_update().filter(organization=org).first()
    created = provider is None
    if provider is None:
        if not client_secret:
            raise SSOError("Give the client secret the provider issued.")
        provider = SSOProvider(organization=org)
    before = _provider_fields(provider) if not created else {}
    provider.issuer = issuer
    provider.client_id = client_id.strip()
    if client_secret:
        provider.client_secret_encrypted = secret_encrypt(client_secret)
    provider.default_role = default_role
    provider.required = required
    provider.enabled = enabled
    provider.updated_at = timezone.now()
    provider.save()
    provider.domain_rows.exclude(domain__in=domains).delete()
    kept = set(provider.domain_rows.values_list("domain", flat=True))
    try:
        with transaction.atomic():
            SSODomain.objects.bulk_create(
                [SSODomain(provider=provider, domain=d) for d in domains if d not in kept]
            )
    except IntegrityError:
        # Another organization claimed one of them since the check above.
        raise SSOError(TAKEN) from None
    after = _provider_fields(provider)
    changed = sorted(k for k in after if before.get(k) != after[k])
    if client_secret and not created:
        changed.append("client_secret")
    if changed:
        audit_record(
            org=org,
            actor=actor,
            action=AuditAction.SSO_PROVIDER_CHANGED,
            summary=(f"Single sign-on provider {'registered' if created else 'changed'}: {issuer}"),
            target=issuer,
            # Never the secret itself: only that it changed.
            data={"created": created, "changed": changed, **after},
        )
    return provider


def _provider_fields(provider: SSOProvider) -> dict[str, Any]:
    return {
        "issuer": provider.issuer,
        "client_id": provider.client_id,
        "domains": list(provider.domains),
        "default_role": provider.default_role,
        "required": provider.required,
        "enabled": provider.enabled,
    }


def sso_discovery(*, issuer: str) -> dict[str, Any]:
    """The provider's discovery document, checked to name the same issuer; SSOError if not."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise SSOError(f"The provider's discovery document could not be read ({url}).") from exc
    if not isinstance(document, dict) or document.get("issuer", "").rstrip("/") != issuer.rstrip(
        "/"
    ):
        raise SSOError("The discovery document names another issuer.")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(document.get(key), str):
            raise SSOError(f"The discovery document has no {key}.")
    return document


def sso_start(*, provider: SSOProvider, redirect_uri: str, email: str) -> SSOStart:
    """The provider's authorization URL (code flow), with a fresh state and nonce."""
    if not provider.enabled:
        raise SSOError("Single sign-on is turned off for this organization.")
    document = sso_discovery(issuer=provider.issuer)
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid email profile",
        "state": state,
        "nonce": nonce,
        "login_hint": email,
        "code_challenge": challenge.decode().rstrip("="),
        "code_challenge_method": "S256",
    }
    return SSOStart(
        url=f"{document['authorization_endpoint']}?{urlencode(query)}",
        state=state,
        nonce=nonce,
        code_verifier=verifier,
    )


def sso_id_token_claims(
    *, provider: SSOProvider, id_token: str, nonce: str, document: dict[str, Any]
) -> dict[str, Any]:
    """The ID token's claims once signature, issuer, audience, expiry and nonce hold."""
    try:
        key = jwt.PyJWKClient(document["jwks_uri"], timeout=HTTP_TIMEOUT).get_signing_key_from_jwt(
            id_token
        )
        claims = jwt.decode(
            id_token,
            key=key,
            algorithms=ID_TOKEN_ALGORITHMS,
            audience=provider.client_id,
            issuer=document["issuer"],
            options={"require": ["iss", "aud", "exp", "iat", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise SSOError("The provider's answer was refused (its ID token did not check).") from exc
    if not nonce or not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
        raise SSOError("The provider's answer was refused (it was not made for this sign-in).")
    return claims


@transaction.atomic
def sso_sign_in(
    *, provider: SSOProvider, code: str, redirect_uri: str, nonce: str, code_verifier: str
) -> User:
    """Finish a sign-in: the code for tokens, the ID token checked, the person (and on the
    first time their membership, with the provider's default role) returned."""
    provider = SSOProvider.objects.select_related("organization").get(pk=provider.pk)
    if not provider.enabled:
        raise SSOError("Single sign-on is turned off for this organization.")
    document = sso_discovery(issuer=provider.issuer)
    try:
        response = requests.post(
            document["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            },
            auth=(provider.client_id, secret_decrypt(provider.client_secret_encrypted)),
            timeout=HTTP_TIMEOUT,
        )
        tokens = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise SSOError("The provider could not be reached to finish the sign-in.") from exc
    if response.status_code != 200 or not isinstance(tokens.get("id_token"), str):
        raise SSOError("The provider refused to finish the sign-in.")
    claims = sso_id_token_claims(
        provider=provider, id_token=tokens["id_token"], nonce=nonce, document=document
    )
    address = str(claims.get("email", "")).strip().lower()
    if not address or claims.get("email_verified") is False:
        raise SSOError("The provider gave no verified email address.")
    if email_domain(address) not in provider.domains:
        raise SSOError(f"{address} is not in a domain this organization signs in with.")
    user = User.objects.filter(email__iexact=address).first()
    if user is None:
        user = User.objects.create_user(
            email=address, password=None, full_name=str(claims.get("name", ""))[:150]
        )
    elif not user.is_active:
        raise SSOError("This account is turned off.")
    org = provider.organization
    if not Membership.objects.filter(organization=org, user=user).exists():
        membership = Membership.objects.create(
            organization=org, user=user, role=provider.default_role
        )
        audit_record(
            org=org,
            actor=user,
            action=AuditAction.MEMBER_JOINED,
            summary=f"{user.email} joined as {membership.get_role_display()} by single sign-on",
            target=f"membership:{membership.pk}",
            data={"sso": provider.issuer, "role": membership.role},
        )
    return user
