"""Sign-in glue: the lockout's account name, and django-allauth's second factor kept
behind the same lockout as the password (a wrong code counts as a failed login)."""

import base64
import hashlib
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.base.forms import AuthenticateForm
from allauth.mfa.webauthn.forms import AuthenticateWebAuthnForm
from axes.handlers.proxy import AxesProxyHandler
from cryptography.fernet import Fernet
from django import forms
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest

from core.client_ip import client_ip


def lockout_username(request: HttpRequest, credentials: dict | None) -> str | None:
    """The name django-axes counts failures against: the email, lower-cased."""
    username = (credentials or {}).get("username") or request.POST.get("username")
    return username.strip().lower() if username else None


class ConsoleAccountAdapter(DefaultAccountAdapter):
    """Accounts come from operators, `createorg` and invitations: nobody signs up alone."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False

    def get_client_ip(self, request: HttpRequest) -> str:
        # The address the lockout and the audit log use (the trusted proxies' entry).
        return client_ip(request) or "0.0.0.0"  # noqa: S104 - a stand-in, never bound

    def reauthenticate(self, user, password: str) -> bool:
        # The password asked again before a factor changes goes through the lockout too.
        return authenticate(context.request, username=user.email, password=password) is not None


def _fernet() -> Fernet:
    # MFA_SECRETS_KEY when set (so SECRET_KEY can rotate alone), else derived from SECRET_KEY.
    material = settings.MFA_SECRETS_KEY or f"mfa-secrets:{settings.SECRET_KEY}"
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(material.encode()).digest()))


def secret_encrypt(text: str) -> str:
    """Encrypt a secret kept at rest (authenticator apps, single sign-on client secrets)."""
    return _fernet().encrypt(text.encode()).decode()


def secret_decrypt(encrypted_text: str) -> str:
    """The clear text of a secret secret_encrypt stored."""
    return _fernet().decrypt(encrypted_text.encode()).decode()


class ConsoleMFAAdapter(DefaultMFAAdapter):
    """Authenticator-app secrets and recovery-code seeds are stored encrypted (Fernet)."""

    def encrypt(self, text: str) -> str:
        return secret_encrypt(text)

    def decrypt(self, encrypted_text: str) -> str:
        return secret_decrypt(encrypted_text)


LOCKED = "Too many failed attempts: try again later."


class _LockedOutFactor:
    """A second factor checked only while the account and the address are not locked
    out, and whose every failure is a failed login for django-axes."""

    user: Any

    def _guarded(self, check):
        request = context.request
        credentials = {"username": self.user.email}
        AxesProxyHandler.update_request(request)
        if not AxesProxyHandler.is_allowed(request, credentials):
            # AxesMiddleware turns this into the lockout page (429).
            request.axes_locked_out = True
            raise forms.ValidationError(LOCKED)
        try:
            return check()
        except forms.ValidationError:
            user_login_failed.send(sender=type(self), credentials=credentials, request=request)
            raise


class LockedAuthenticateForm(_LockedOutFactor, AuthenticateForm):
    """An authenticator app's or a recovery code, behind the login lockout."""

    def clean_code(self) -> str:
        return self._guarded(super().clean_code)


class LockedAuthenticateWebAuthnForm(_LockedOutFactor, AuthenticateWebAuthnForm):
    """A passkey's assertion, behind the login lockout."""

    def clean_credential(self):
        return self._guarded(super().clean_credential)
