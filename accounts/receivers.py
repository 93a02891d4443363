"""Credentials follow the person, however the change is made (the services, the admin,
a cascade): connected in AccountsConfig.ready. Each handler calls a service; the
deletes and saves they hook into run in a transaction, so the revocation commits (or
rolls back) with the change itself."""

from allauth.core import context
from allauth.mfa.signals import authenticator_added, authenticator_removed
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver

from accounts.credential_cache import credentials_cache_clear
from accounts.models import APIKey, Membership, Organization, SessionToken, User
from accounts.services import member_credentials_revoke, session_tokens_revoke_all
from accounts.signin import two_factor_change_record, user_sessions_end


def _current_session_key() -> str | None:
    """The session of the request making the change (kept when the others end)."""
    request = context.request
    session = getattr(request, "session", None) if request is not None else None
    return session.session_key if session is not None else None


@receiver(pre_delete, sender=Membership, dispatch_uid="accounts.membership_deleted")
def _membership_deleted(sender, instance: Membership, **kwargs) -> None:
    member_credentials_revoke(user=instance.user, org=instance.organization)


@receiver(pre_delete, sender=User, dispatch_uid="accounts.user_deleted")
def _user_deleted(sender, instance: User, **kwargs) -> None:
    # Before the delete: APIKey.user is SET_NULL, which would leave a personal key with
    # no person, still working.
    member_credentials_revoke(user=instance)


@receiver(pre_save, sender=User, dispatch_uid="accounts.user_changing")
def _user_changing(sender, instance: User, raw: bool = False, **kwargs) -> None:
    """Note what the save changes that credentials depend on (read in post_save)."""
    instance._credential_changes = set()
    update_fields = kwargs.get("update_fields")
    if raw or instance.pk is None:
        return
    if update_fields is not None and not {"password", "is_active"} & set(update_fields):
        return  # e.g. last_login at every login: nothing to compare
    before = User.objects.filter(pk=instance.pk).values("password", "is_active").first()
    if before is None:
        return
    if before["password"] != instance.password:
        instance._credential_changes.add("password")
    if before["is_active"] and not instance.is_active:
        instance._credential_changes.add("deactivated")


@receiver(post_save, sender=User, dispatch_uid="accounts.user_changed")
def _user_changed(sender, instance: User, created: bool = False, **kwargs) -> None:
    changes = getattr(instance, "_credential_changes", set())
    instance._credential_changes = set()
    if "deactivated" in changes:
        member_credentials_revoke(user=instance)
        user_sessions_end(user=instance)
    elif "password" in changes:
        session_tokens_revoke_all(user=instance)
        # A new password ends every other console session of the person.
        user_sessions_end(user=instance, keep_session_key=_current_session_key())


@receiver(authenticator_added, dispatch_uid="accounts.second_factor_added")
def _second_factor_added(sender, user: User, authenticator, **kwargs) -> None:
    two_factor_change_record(user=user, kind=authenticator.type, added=True)


@receiver(authenticator_removed, dispatch_uid="accounts.second_factor_removed")
def _second_factor_removed(sender, user: User, authenticator, **kwargs) -> None:
    two_factor_change_record(user=user, kind=authenticator.type, added=False)
    # Whoever removed it keeps this session; every other one signs in again.
    user_sessions_end(user=user, keep_session_key=_current_session_key())


def _credentials_changed(sender, **kwargs) -> None:
    """A credential, its person, membership or organization saved or deleted in this
    process: the API sees it on the next request (other processes within a second or so:
    accounts.credential_cache)."""
    credentials_cache_clear()


for _model in (APIKey, SessionToken, Membership, User, Organization):
    for _signal in (post_save, post_delete):
        _signal.connect(
            _credentials_changed,
            sender=_model,
            dispatch_uid=f"accounts.credentials_changed.{_model.__name__}.{id(_signal)}",
        )
