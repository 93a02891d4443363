"""Reads for alerts: each rule's current figures and whether its condition holds,
the notifications list, the banner, and deliveries. Every read is scoped to one
organization: a rule only ever sees its own organization's figures, and a rule scoped
to a project only that project's. A member limited to projects sees the rules of their
projects and those rules' notifications, never the organization-wide ones.
"""

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any

from django.db.models import QuerySet, Sum
from django.db.models.functions import TruncDate

from accounts.models import MANAGER_ROLES, Membership, Organization, User
from alerts.models import (
    AlertDelivery,
    AlertKind,
    AlertNotification,
    AlertRule,
    AlertSettings,
)
from billing.models import EntryKind, LedgerEntry
from billing.money import credits_display
from billing.selectors import credit_balance, default_worker_type
from core.calendar import org_zone
from core.numbers import count_of, decimal_grouped, duration_display, noun
from insights.selectors.panel import tokens_month_to_date
from spend.models import RateLimitRefusal, SpendDay
from usage.models import Controller

ZERO = Decimal("0")
PROJECT_DIMENSION = "p"  # SpendDay's dimension of a project (subject: its id)
HOUR = timedelta(hours=1)
UNUSUAL_BASELINE_DAYS = 14


@dataclass(frozen=True)
class Condition:
    """Whether a rule's condition holds now for one subject, with the figures it saw."""

    subject: str  # "" for the organization, "controller:<id>" for one controller
    holds: bool
    message: str
    figures: dict[str, Any] = field(default_factory=dict)


def _num(value: Decimal) -> str:
    """A decimal as plain text for figures and messages (no exponent, no trailing zeros)."""
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def _money(value: Decimal) -> str:
    """Credits in a message: the console's one rule (billing.money.credits_display)."""
    return credits_display(value)


def daily_usage_credits(
    *, org: Organization, since_day: date, until: datetime, project_id: int | None = None
) -> dict[date, Decimal]:
    """Usage debits per calendar day in the organization's time zone (one grouped query);
    with a project, the credits its keys and controllers were charged per day (the spend
    counters keep them per project and local day)."""
    tz = org_zone(org)
    if project_id is not None:
        last_day = until.astimezone(tz).date()
        project_days = SpendDay.objects.filter(
            organization=org,
            dimension=PROJECT_DIMENSION,
            subject=str(project_id),
            day__gte=since_day,
            day__lte=last_day,
        ).values_list("day", "credits")
        return {day: credits for day, credits in project_days if credits}
    since = datetime(since_day.year, since_day.month, since_day.day, tzinfo=tz)
    rows = (
        LedgerEntry.objects.filter(
            organization=org, kind=EntryKind.USAGE, created_at__gte=since, created_at__lt=until
        )
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    return {row["day"]: -row["total"] for row in rows}


def median_of_days(values: dict[date, Decimal], days: list[date]) -> Decimal:
    """The median of the days' values, days without usage counting as zero."""
    return Decimal(statistics.median([values.get(d, ZERO) for d in days]))


class OrgFigures:
    """The figures alert rules read, computed once per evaluation and only when a rule
    needs them."""

    def __init__(self, org: Organization, now: datetime, project_id: int | None = None) -> None:
        self.org = org
        self.now = now
        self.project_id = project_id  # None: the whole organization

    @cached_property
    def tokens(self):
        return tokens_month_to_date(org=self.org, now=self.now, tz=self.org.time_zone)

    @cached_property
    def balance(self) -> Decimal:
        return credit_balance(org=self.org)

    @cached_property
    def hourly_rate(self) -> Decimal | None:
        worker_type = default_worker_type()
        return worker_type.hourly_rate if worker_type and worker_type.hourly_rate > 0 else None

    @cached_property
    def refusals_last_hour(self) -> int:
        refusals = RateLimitRefusal.objects.filter(
            organization=self.org, minute__gt=self.now - HOUR, minute__lte=self.now
        )
        if self.project_id is not None:
            refusals = refusals.filter(api_key__project_id=self.project_id)
        total = refusals.aggregate(total=Sum("count"))["total"]
        return total or 0

    @cached_property
    def today(self) -> date:
        return self.now.astimezone(org_zone(self.org)).date()

    @cached_property
    def daily_credits(self) -> dict[date, Decimal]:
        since = self.today - timedelta(days=UNUSUAL_BASELINE_DAYS)
        return daily_usage_credits(
            org=self.org, since_day=since, until=self.now + HOUR, project_id=self.project_id
        )

    @cached_property
    def baseline_median(self) -> Decimal:
        days = [self.today - timedelta(days=i) for i in range(UNUSUAL_BASELINE_DAYS, 0, -1)]
        return median_of_days(self.daily_credits, days)

    @cached_property
    def controllers(self) -> list[Mapping[str, Any]]:
        controllers = Controller.objects.filter(organization=self.org)
        if self.project_id is not None:
            controllers = controllers.filter(project_id=self.project_id)
        return list(controllers.values("id", "name", "last_heartbeat_at", "created_at"))


def tokens_condition(*, percent_threshold: Decimal, used: int, allocation: int | None) -> Condition:
    if not allocation:
        return Condition("", False, "The plan's monthly tokens are unlimited.", {"used": used})
    percent = Decimal(used) * 100 / allocation
    shown = percent.quantize(Decimal("0.1"))
    return Condition(
        "",
        percent >= percent_threshold,
        f"Monthly tokens reached {_num(shown)}% of the allocation "
        f"({used:,} of {allocation:,}; alert at {_num(percent_threshold)}%).",
        {"used": used, "allocation": allocation, "percent": _num(shown)},
    )


def balance_condition(*, threshold: Decimal, balance: Decimal) -> Condition:
    return Condition(
        "",
        balance < threshold,
        f"The credit balance is {_money(balance)} credits, below {_money(threshold)}.",
        {"balance": _num(balance), "threshold": _num(threshold)},
    )


def usage_time_condition(
    *, threshold_hours: Decimal, balance: Decimal, hourly_rate: Decimal | None
) -> Condition:
    if hourly_rate is None:
        return Condition("", False, "No default worker type prices usage time.", {})
    hours = max(ZERO, balance / hourly_rate)
    shown = hours.quantize(Decimal("0.1"))
    return Condition(
        "",
        hours < threshold_hours,
        f"About {decimal_grouped(shown, 1)} hours of usage time remain at "
        f"{_money(hourly_rate)} credits an hour, below {_num(threshold_hours)} "
        f"{noun(threshold_hours, 'hour')}.",
        {"hours": _num(shown), "hourly_rate": _num(hourly_rate), "balance": _num(balance)},
    )


def rate_limits_condition(*, threshold: Decimal, refused: int) -> Condition:
    return Condition(
        "",
        refused > threshold,
        f"{refused:,} requests were refused by rate limits in the last hour "
        f"(alert above {_num(threshold)}).",
        {"refused_last_hour": refused},
    )


def unusual_usage_condition(*, k: Decimal, today: Decimal, median: Decimal) -> Condition:
    # With no baseline (a median of zero) nothing is "unusual": a new organization's
    # first day of usage would otherwise always fire.
    holds = median > 0 and today > k * median
    return Condition(
        "",
        holds,
        f"Today's usage is {_money(today)} credits, more than {_num(k)} × the 14-day "
        f"median of {_money(median)}.",
        {"today": _num(today), "median_14d": _num(median), "k": _num(k)},
    )


def controller_conditions(
    *, minutes: Decimal, controllers: Sequence[Mapping[str, Any]], now: datetime
) -> list[Condition]:
    conditions = []
    limit = timedelta(minutes=float(minutes))
    for c in controllers:
        seen = c["last_heartbeat_at"] or c["created_at"]
        offline_for = now - seen
        offline_minutes = int(offline_for.total_seconds() // 60)
        conditions.append(
            Condition(
                f"controller:{c['id']}",
                offline_for > limit,
                f"Controller {c['name']} has been offline for {duration_display(offline_for)} "
                f"(alert after {count_of(int(minutes), 'minute')}).",
                {
                    "controller": c["name"],
                    "offline_minutes": offline_minutes,
                    "last_heartbeat_at": c["last_heartbeat_at"].isoformat()
                    if c["last_heartbeat_at"]
                    else None,
                },
            )
        )
    return conditions


# Kinds whose conditions a higher app computes (budgets: usage), registered from its
# AppConfig.ready as kind -> fn(rule=, org=, now=) -> list of Condition.
CONDITION_SOURCES: dict[str, Callable[..., list[Condition]]] = {}


def alert_condition_source_register(kind: str, source: Callable[..., list[Condition]]) -> None:
    CONDITION_SOURCES[kind] = source


def rule_conditions(*, rule: AlertRule, figures: OrgFigures) -> list[Condition]:
    """The rule's condition now, one per subject (one per controller for that kind)."""
    t = rule.threshold
    if rule.kind in CONDITION_SOURCES:
        return CONDITION_SOURCES[rule.kind](rule=rule, org=figures.org, now=figures.now)
    match rule.kind:
        case AlertKind.TOKENS:
            tokens = figures.tokens
            return [
                tokens_condition(
                    percent_threshold=t, used=tokens.used, allocation=tokens.allocation
                )
            ]
        case AlertKind.BALANCE:
            return [balance_condition(threshold=t, balance=figures.balance)]
        case AlertKind.USAGE_TIME:
            return [
                usage_time_condition(
                    threshold_hours=t, balance=figures.balance, hourly_rate=figures.hourly_rate
                )
            ]
        case AlertKind.RATE_LIMITS:
            return [rate_limits_condition(threshold=t, refused=figures.refusals_last_hour)]
        case AlertKind.UNUSUAL_USAGE:
            today = figures.daily_credits.get(figures.today, ZERO)
            return [unusual_usage_condition(k=t, today=today, median=figures.baseline_median)]
        case AlertKind.CONTROLLER_OFFLINE:
            return controller_conditions(
                minutes=t, controllers=figures.controllers, now=figures.now
            )
    raise ValueError(f"unknown alert kind {rule.kind!r}")


# ------------------------------------------------------------------------ lists


def alert_rules(
    *, org: Organization, project_ids: frozenset[int] | None = None
) -> QuerySet[AlertRule]:
    """The organization's rules; for someone limited to projects (project_ids: the
    projects they see, None: every project) only the rules of those projects."""
    rules = AlertRule.objects.filter(organization=org).select_related("project")
    if project_ids is not None:
        rules = rules.filter(project_id__in=project_ids)
    return rules


def alert_rule_for(*, org: Organization, rule_id: int) -> AlertRule | None:
    return AlertRule.objects.filter(organization=org, pk=rule_id).select_related("project").first()


def alert_settings_for(*, org: Organization) -> AlertSettings | None:
    return AlertSettings.objects.filter(organization=org).first()


def _notifications_seen(
    org: Organization, project_ids: frozenset[int] | None
) -> QuerySet[AlertNotification]:
    notifications = AlertNotification.objects.filter(organization=org)
    if project_ids is not None:  # a deleted rule's crossings went with the organization's
        notifications = notifications.filter(rule__project_id__in=project_ids)
    return notifications


def alert_notifications(
    *, org: Organization, project_ids: frozenset[int] | None = None
) -> QuerySet[AlertNotification]:
    """The organization's notifications, newest first (only those of the projects'
    rules for someone limited to projects)."""
    return _notifications_seen(org, project_ids).select_related("rule")


def alert_notification_for(
    *, org: Organization, notification_id: int, project_ids: frozenset[int] | None = None
) -> AlertNotification | None:
    return _notifications_seen(org, project_ids).filter(pk=notification_id).first()


@dataclass(frozen=True)
class AlertBanner:
    """The banner shows one notification, the newest, and how many more wait behind it."""

    notification: AlertNotification
    more: int


def alert_banner(
    *, org: Organization, user: User, project_ids: frozenset[int] | None = None
) -> AlertBanner | None:
    """The newest crossing still in effect that this member has not dismissed, and the
    number of others (two queries), or None when there is none."""
    pending = (
        _notifications_seen(org, project_ids)
        .filter(cleared_at__isnull=True)
        .exclude(dismissed_by=user)
    )
    newest = pending.order_by("-fired_at", "-id").first()
    if newest is None:
        return None
    return AlertBanner(notification=newest, more=pending.count() - 1)


def alert_deliveries(*, org: Organization, notification_ids: list[int]) -> QuerySet[AlertDelivery]:
    return AlertDelivery.objects.filter(
        notification__organization=org, notification_id__in=notification_ids
    )


def alert_recipients(*, org: Organization) -> list[str]:
    """The emails of the organization's owners and admins (active users only)."""
    return list(
        Membership.objects.filter(
            organization=org, role__in=list(MANAGER_ROLES), user__is_active=True
        )
        .order_by("user__email")
        .values_list("user__email", flat=True)
    )
