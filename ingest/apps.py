from django.apps import AppConfig


class IngestConfig(AppConfig):
    """The batch pipeline: usage records and jobs in, validated, stored, charged
    (docs/data-lifecycle.md). No models of its own: it writes usage's records, rollups'
    aggregates and spend's settlement in one transaction."""

    name = "ingest"
    verbose_name = "Ingestion"
