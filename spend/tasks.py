"""Celery tasks for spend controls. The name keeps the `usage.` prefix it was published
with (the beat schedule and queued messages carry it)."""

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from spend.models import Reservation, ReservationStatus
from spend.services.holds import reservations_expire, spend_lock


@shared_task(name="usage.reservations_expire_due", acks_late=True, ignore_result=True)
def reservations_expire_due() -> int:
    """Expire every organization's overdue reservations (spend controls); returns how many."""
    now = timezone.now()
    org_ids = (
        Reservation.objects.filter(status=ReservationStatus.HELD, expires_at__lte=now)
        .values_list("organization_id", flat=True)
        .distinct()
    )
    expired = 0
    for org_id in org_ids:
        with transaction.atomic():
            spend_lock(org_id)
            expired += reservations_expire(org_id=org_id, now=now)
    return expired
