"""Preview: when a rule would have fired over the last 30 days of the organization's
real figures, with the same once-per-crossing logic as the live evaluation.

Each kind is replayed from what the database keeps: tokens and credits per local day,
the ledger's balance after every entry, refusals per clock hour; a project's rule from
its credits per day (the spend counters) and its keys' refusals. Controllers' heartbeat
history is not kept, so that kind shows the controllers that are offline now.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import F, Min, RowRange, Sum, Value, Window
from django.db.models.functions import Lag, TruncHour
from django.utils import timezone

from accounts.models import Organization
from alerts.models import PROJECT_KINDS, AlertKind
from alerts.selectors import (
    UNUSUAL_BASELINE_DAYS,
    OrgFigures,
    _money,
    _num,
    controller_conditions,
    daily_usage_credits,
    median_of_days,
)
from billing.models import LedgerEntry
from core.calendar import first_day_of_month, local_midnight, org_zone
from insights.selectors.panel import tokens_by_day_and_model
from spend.models import RateLimitRefusal

PREVIEW_DAYS = 30
ZERO = Decimal("0")


@dataclass(frozen=True)
class PreviewEvent:
    at: datetime | date
    message: str

    @property
    def has_time(self) -> bool:
        return isinstance(self.at, datetime)


@dataclass(frozen=True)
class Preview:
    events: list[PreviewEvent]
    note: str
    days: int = PREVIEW_DAYS


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _crossings(series, holds) -> list:
    """The items of a time-ordered series at which the condition starts to hold."""
    out, was = [], False
    for item in series:
        now_holds = holds(item)
        if now_holds and not was:
            out.append(item)
        was = now_holds
    return out


def _percent(used: int, allocation: int) -> str:
    return _num((Decimal(used) * 100 / allocation).quantize(Decimal("0.1")))


def _tokens(org: Organization, threshold: Decimal, now: datetime) -> Preview:
    allocation = org.monthly_token_allocation
    if not allocation:
        return Preview([], "The plan's monthly tokens are unlimited: this rule never fires.")
    tz = org_zone(org)
    today = now.astimezone(tz).date()
    first = today - timedelta(days=PREVIEW_DAYS - 1)
    month_start = first_day_of_month(first)
    since = local_midnight(month_start, tz)
    # Day rows, hour rows and bucket aggregates, as the token card reads them.
    per_day: dict = {}
    by_model = tokens_by_day_and_model(
        org=org, start=since, end=now + timedelta(microseconds=1), tz=str(tz)
    )
    for (day, _model), tokens in by_model.items():
        per_day[day] = per_day.get(day, 0) + tokens
    series, used = [], 0
    for day in _days(month_start, today):
        if day.day == 1:
            used = 0  # a new calendar month starts from zero
        used += per_day.get(day, 0)
        if day >= first:
            series.append((day, used))
    events = [
        PreviewEvent(day, f"{_percent(used, allocation)}% ({used:,} tokens)")
        for day, used in _crossings(series, lambda item: item[1] * 100 >= threshold * allocation)
    ]
    return Preview(events, "Month-to-date tokens at the end of each day, in your time zone.")


def _balance_below(org: Organization, limit: Decimal, now: datetime, label) -> list[PreviewEvent]:
    start = now - timedelta(days=PREVIEW_DAYS)
    before = (
        LedgerEntry.objects.filter(organization=org, created_at__lt=start)
        .order_by("-id")
        .values_list("balance_after", flat=True)
        .first()
    )
    crossings = (
        LedgerEntry.objects.filter(organization=org, created_at__gte=start, created_at__lte=now)
        .annotate(
            previous=Window(
                # No history before the window: the first entry counts as a crossing if below.
                Lag("balance_after", default=Value(limit if before is None else before)),
                order_by=[F("id").asc()],
            ),
            # The balance itself as a window expression too, so that both conditions are
            # applied after the window is computed (a plain filter would run before it
            # and drop the rows that hold the previous balance).
            after=Window(Min("balance_after"), order_by=[F("id").asc()], frame=RowRange(0, 0)),
        )
        .filter(after__lt=limit, previous__gte=limit)
        .order_by("id")
        .values_list("created_at", "balance_after")
    )
    events = [PreviewEvent(at, label(balance)) for at, balance in crossings]
    if before is not None and before < limit:
        # Already below when the window opens: a new rule would fire on its first check.
        events.insert(0, PreviewEvent(start, label(before) + " (already below 30 days ago)"))
    elif (
        before is None
        and not events
        and limit > 0
        and not LedgerEntry.objects.filter(organization=org).exists()
    ):
        events.append(PreviewEvent(now, label(ZERO) + " (no credits yet)"))
    return events


def _balance(org: Organization, threshold: Decimal, now: datetime) -> Preview:
    events = _balance_below(org, threshold, now, lambda b: f"balance {_money(b)}")
    return Preview(events, "The balance after every ledger entry.")


def _usage_time(org: Organization, threshold: Decimal, now: datetime) -> Preview:
    rate = OrgFigures(org, now).hourly_rate
    if rate is None:
        return Preview([], "No default worker type prices usage time: this rule never fires.")
    events = _balance_below(
        org,
        threshold * rate,
        now,
        lambda b: f"about {_num((max(ZERO, b) / rate).quantize(Decimal('0.1')))} hours left",
    )
    return Preview(
        events, f"The balance after every ledger entry at today's rate ({_num(rate)} an hour)."
    )


def _rate_limits(
    org: Organization, threshold: Decimal, now: datetime, project_id: int | None = None
) -> Preview:
    start = (now - timedelta(days=PREVIEW_DAYS)).replace(minute=0, second=0, microsecond=0)
    refusals = RateLimitRefusal.objects.filter(organization=org, minute__gte=start, minute__lte=now)
    if project_id is not None:
        refusals = refusals.filter(api_key__project_id=project_id)
    rows = (
        refusals.annotate(hour=TruncHour("minute"))
        .values("hour")
        .annotate(refused=Sum("count"))
        .order_by("hour")
    )
    per_hour = {row["hour"]: row["refused"] for row in rows}
    hours, hour = [], start
    while hour <= now:
        hours.append((hour, per_hour.get(hour, 0)))
        hour += timedelta(hours=1)
    events = [
        PreviewEvent(at, f"{refused:,} refused in the hour")
        for at, refused in _crossings(hours, lambda item: item[1] > threshold)
    ]
    whose = "of the project's keys " if project_id is not None else ""
    return Preview(
        events, f"Refused requests {whose}per clock hour (the live rule uses the last 60 min)."
    )


def _unusual(
    org: Organization, k: Decimal, now: datetime, project_id: int | None = None
) -> Preview:
    tz = org_zone(org)
    today = now.astimezone(tz).date()
    first = today - timedelta(days=PREVIEW_DAYS - 1)
    credits = daily_usage_credits(
        org=org,
        since_day=first - timedelta(days=UNUSUAL_BASELINE_DAYS),
        until=now + timedelta(hours=1),
        project_id=project_id,
    )
    series = []
    for day in _days(first, today):
        baseline = [day - timedelta(days=i) for i in range(UNUSUAL_BASELINE_DAYS, 0, -1)]
        series.append((day, credits.get(day, ZERO), median_of_days(credits, baseline)))
    events = [
        PreviewEvent(day, f"{_money(spent)} credits, median {_money(median)}")
        for day, spent, median in _crossings(
            series, lambda item: item[2] > 0 and item[1] > k * item[2]
        )
    ]
    whose = "the project's usage credits" if project_id is not None else "usage credits"
    return Preview(events, f"Each day's {whose} against the median of the 14 days before.")


def _controllers(
    org: Organization, minutes: Decimal, now: datetime, project_id: int | None = None
) -> Preview:
    figures = OrgFigures(org, now, project_id=project_id)
    events = [
        PreviewEvent(now, c.message)
        for c in controller_conditions(minutes=minutes, controllers=figures.controllers, now=now)
        if c.holds
    ]
    return Preview(
        events,
        "Heartbeat history is not kept: this shows the controllers offline that long now.",
    )


_PREVIEWS = {
    AlertKind.TOKENS: _tokens,
    AlertKind.BALANCE: _balance,
    AlertKind.USAGE_TIME: _usage_time,
    AlertKind.RATE_LIMITS: _rate_limits,
    AlertKind.UNUSUAL_USAGE: _unusual,
    AlertKind.CONTROLLER_OFFLINE: _controllers,
}


def alert_rule_preview(
    *,
    org: Organization,
    kind: str,
    threshold: Decimal,
    now: datetime | None = None,
    project_id: int | None = None,
) -> Preview:
    """When a rule of this kind and threshold (in this project, if one) would have fired
    in the last 30 days."""
    preview = _PREVIEWS.get(kind)
    if preview is None:  # kinds another app evaluates (budgets): no history to replay here
        return Preview([], "Fires as each budget crosses its thresholds (Settings → Budgets).")
    if project_id is None:
        return preview(org, threshold, now or timezone.now())
    if kind not in PROJECT_KINDS:
        return Preview([], "This kind watches the whole organization: choose no project.")
    return preview(org, threshold, now or timezone.now(), project_id)
