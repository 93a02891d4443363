from django.apps import AppConfig
from django.db.models.signals import post_migrate


class UsageConfig(AppConfig):
    """The records: controllers, batches, jobs, queries, worker sessions and matching
    runs, their keys, partitions and retention (docs/architecture.md)."""

    name = "usage"
    verbose_name = "Usage"

    def ready(self) -> None:
        # Every `migrate` makes the months ahead too (the beat task does it daily).
        post_migrate.connect(_partitions_make_ahead, sender=self)


def _partitions_make_ahead(sender, using, plan=None, **kwargs) -> None:
    from django.db import connections

    from usage.services.partitions import partitions_make_ahead

    if connections[using].vendor != "postgresql" or using != "default":
        return
    # Only once the partitioned tables exist (not while migrating backwards, say).
    from django.db.migrations.recorder import MigrationRecorder

    if (
        MigrationRecorder(connections[using])
        .migration_qs.filter(app="usage", name="0010_partition_raw_records")
        .exists()
    ):
        partitions_make_ahead()
