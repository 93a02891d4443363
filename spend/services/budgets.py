"""Writes for spend controls' settings: budgets, and pausing or resuming an API key."""

from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import APIKey, AuditAction, Organization, Project, User
from billing.money import CREDIT_QUANTUM, credits_exact, credits_round
from spend.models import Budget, BudgetPeriod, BudgetScope, KeyPause
from spend.signals import budget_saved
from usage.members import member_normalize

MAX_BUDGET = Decimal("1e12")


class BudgetInvalid(ValueError):
    """A budget field that cannot be stored, named."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def _amount(field: str, value: object, *, required: bool) -> Decimal | None:
    if value is None or value == "":
        if required:
            raise BudgetInvalid(field, "is required")
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise BudgetInvalid(field, "must be a decimal number of credits") from None
    if not amount.is_finite() or amount < 0:
        raise BudgetInvalid(field, "must be zero or more credits")
    if amount >= MAX_BUDGET:
        raise BudgetInvalid(field, f"must be under {MAX_BUDGET:,.0f} credits")
    if credits_round(amount) != amount:
        raise BudgetInvalid(
            field, f"must be a whole number of the smallest credit unit ({CREDIT_QUANTUM:f})"
        )
    return amount


def _thresholds(value: object) -> list[int]:
    if value is None:
        return [50, 80, 100]
    if not isinstance(value, list) or not value or len(value) > 10:
        raise BudgetInvalid("thresholds", "must be a list of 1 to 10 percentages")
    if not all(isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 1000 for p in value):
        raise BudgetInvalid("thresholds", "each must be a whole percentage from 1 to 1000")
    return sorted(set(value))


_PERIOD_WORDS: dict[str, str] = {
    BudgetPeriod.DAY: "daily",
    BudgetPeriod.WEEK: "weekly",
    BudgetPeriod.MONTH: "monthly",
}


def _words(budget: Budget) -> str:
    """The budget as the audit log says it: subject, period and levels in credits."""
    subjects: dict[str, str] = {
        BudgetScope.ORGANIZATION: "the organization",
        BudgetScope.API_KEY: f"API key {budget.api_key.name if budget.api_key else '?'}",
        BudgetScope.MEMBER: budget.member,
        BudgetScope.PROJECT: f"project {budget.project.name if budget.project else '?'}",
    }
    subject = subjects[budget.scope]
    hard = credits_exact(budget.hard_limit) if budget.hard_limit is not None else "none"
    return (
        f"{_PERIOD_WORDS[budget.period]} budget for {subject}: soft "
        f"{credits_exact(budget.soft_limit)}, hard {hard} credits"
    )


def _audit(budget: Budget, action: str, verb: str, actor: User | None, pk: int) -> None:
    audit_record(
        org=budget.organization,
        actor=actor,
        action=action,
        summary=f"{verb} {_words(budget)}",
        target=f"budget:{pk}",
    )


def _validate(budget: Budget) -> None:
    if budget.period not in BudgetPeriod.values:
        raise BudgetInvalid("period", f"must be one of {', '.join(BudgetPeriod.values)}")
    if budget.hard_limit is not None and budget.hard_limit < budget.soft_limit:
        raise BudgetInvalid("hard_limit", "must not be below the soft level")


def _project_set(budget: Budget, org: Organization, scope: str, project_id: int | None) -> None:
    if scope != BudgetScope.PROJECT:
        if project_id is not None:
            raise BudgetInvalid("project", "only a project's budget names a project")
        return
    if project_id is None:
        raise BudgetInvalid("project", "is required for a project's budget")
    project = Project.objects.filter(organization=org, pk=project_id).first()
    if project is None:
        raise BudgetInvalid("project", "no such project in this organization")
    budget.project = project


@transaction.atomic
def budget_create(
    *,
    org: Organization,
    scope: str,
    period: str,
    soft_limit: object,
    hard_limit: object = None,
    api_key_id: int | None = None,
    member: str = "",
    project_id: int | None = None,
    thresholds: object = None,
    actor: User | None = None,
) -> Budget:
    """Store a new budget for the organization, its key, its member or its project;
    BudgetInvalid names the field at fault (another organization's key or project is
    'not found')."""
    if scope not in BudgetScope.values:
        raise BudgetInvalid("scope", f"must be one of {', '.join(BudgetScope.values)}")
    budget = Budget(organization=org, scope=scope, period=period)
    if scope == BudgetScope.API_KEY:
        if api_key_id is None:
            raise BudgetInvalid("api_key", "is required for an API key's budget")
        key = APIKey.objects.filter(organization=org, pk=api_key_id).first()
        if key is None:
            raise BudgetInvalid("api_key", "no such API key in this organization")
        budget.api_key = key
    elif api_key_id is not None:
        raise BudgetInvalid("api_key", "only an API key's budget names a key")
    if scope == BudgetScope.MEMBER:
        member = member_normalize(member or "")
        if not member or len(member) > 254:
            raise BudgetInvalid("member", "is required for a member's budget (their email)")
        budget.member = member
    elif member:
        raise BudgetInvalid("member", "only a member's budget names a member")
    _project_set(budget, org, scope, project_id)
    budget.soft_limit = _amount("soft_limit", soft_limit, required=True)
    budget.hard_limit = _amount("hard_limit", hard_limit, required=False)
    budget.thresholds = _thresholds(thresholds)
    _validate(budget)
    try:
        with transaction.atomic():
            budget.save()
    except IntegrityError:
        raise BudgetInvalid("period", "this subject already has a budget for that period") from None
    _audit(budget, AuditAction.BUDGET_CREATED, "Set a", actor, budget.pk)
    budget_saved.send(sender=budget_saved, organization=org)  # alerts make its rule
    return budget


@transaction.atomic
def budget_update(*, budget: Budget, changes: dict, actor: User | None = None) -> Budget:
    """Change a budget's levels, thresholds or period (its subject stays)."""
    if "soft_limit" in changes:
        budget.soft_limit = _amount("soft_limit", changes["soft_limit"], required=True)
    if "hard_limit" in changes:
        budget.hard_limit = _amount("hard_limit", changes["hard_limit"], required=False)
    if "thresholds" in changes:
        budget.thresholds = _thresholds(changes["thresholds"])
    if "period" in changes:
        budget.period = changes["period"]
    _validate(budget)
    budget.updated_at = timezone.now()
    try:
        with transaction.atomic():
            budget.save()
    except IntegrityError:
        raise BudgetInvalid("period", "this subject already has a budget for that period") from None
    _audit(budget, AuditAction.BUDGET_UPDATED, "Changed the", actor, budget.pk)
    return budget


@transaction.atomic
def budget_delete(*, budget: Budget, actor: User | None = None) -> None:
    """Delete the budget (its alerts stop)."""
    pk = budget.pk
    budget.delete()
    _audit(budget, AuditAction.BUDGET_DELETED, "Deleted the", actor, pk)


@transaction.atomic
def apikey_pause(*, key: APIKey, by: User | None = None) -> KeyPause:
    """Pause the key: authorize answers 402 key_paused until it is resumed."""
    pause, created = KeyPause.objects.get_or_create(
        api_key=key, defaults={"organization_id": key.organization_id, "paused_by": by}
    )
    if created:
        audit_record(
            org=key.organization,
            actor=by,
            action=AuditAction.API_KEY_PAUSED,
            summary=f"Paused {key.name} ({key.display}): its authorizations are refused",
            target=f"api_key:{key.pk}",
        )
    return pause


@transaction.atomic
def apikey_resume(*, key: APIKey, actor: User | None = None) -> None:
    """Resume a paused key (nothing happens to one that is not paused)."""
    resumed, _ = KeyPause.objects.filter(api_key=key, organization_id=key.organization_id).delete()
    if resumed:
        audit_record(
            org=key.organization,
            actor=actor,
            action=AuditAction.API_KEY_RESUMED,
            summary=f"Resumed {key.name} ({key.display})",
            target=f"api_key:{key.pk}",
        )
