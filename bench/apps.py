from django.apps import AppConfig


class BenchConfig(AppConfig):
    """Only for its management commands: no models, no URLs."""

    name = "bench"
    verbose_name = "Benchmarks"
