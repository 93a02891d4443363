"""Login lockout (django-axes) counted two ways, each with its own threshold.

- per account name: AXES_FAILURE_LIMIT failures (5) lock that name, from any address;
- per client address: AXES_IP_FAILURE_LIMIT failures (50), whatever names they were for,
  lock the address. Higher, so failures against names that are not accounts (or against
  other people's) from a shared address do not lock out a real owner there.

A successful login clears only the failures of that account name from that address:
never other names' failures from the same address (logging into your own account must
not reset the count against someone else's), nor an attacker's failures against the
same name from elsewhere.

django-axes compares one number with one limit, so `get_failures` reports the per-name
count or the per-address count scaled to the per-name limit, whichever is nearer to it.
"""

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import QuerySet, Sum


def ip_failure_limit() -> int:
    return int(settings.AXES_IP_FAILURE_LIMIT)


class ConsoleLockoutHandler(AxesDatabaseHandler):
    """AxesDatabaseHandler with separate per-name and per-address thresholds."""

    def _recent(self, request) -> QuerySet[AccessAttempt]:
        attempts = AccessAttempt.objects.all()
        if settings.AXES_COOLOFF_TIME is not None:
            attempts = attempts.filter(attempt_time__gte=get_cool_off_threshold(request))
        return attempts

    def get_failures(self, request, credentials: dict | None = None) -> int:
        username = get_client_username(request, credentials)
        attempts = self._recent(request)
        total = Sum("failures_since_start")
        by_name = 0
        if username:
            by_name = attempts.filter(username=username).aggregate(n=total)["n"] or 0
        by_address = 0
        address = getattr(request, "axes_ip_address", None)
        if address:
            by_address = attempts.filter(ip_address=address).aggregate(n=total)["n"] or 0
        # by_address reaches the per-name limit exactly when it reaches its own limit.
        scaled = by_address * int(settings.AXES_FAILURE_LIMIT) // ip_failure_limit()
        return max(by_name, scaled)

    def reset_user_attempts(self, request, credentials: dict | None = None) -> int:
        username = get_client_username(request, credentials)
        if not username:
            return 0
        count, _ = AccessAttempt.objects.filter(
            username=username, ip_address=getattr(request, "axes_ip_address", None)
        ).delete()
        return count
