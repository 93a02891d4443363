"""What usage announces to the apps above it (alerts connect in their AppConfig.ready)."""

from django.dispatch import Signal

# Sent after an ingestion batch stored at least one record, with `organization_id`.
usage_recorded = Signal()
