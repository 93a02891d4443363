import pytest


@pytest.mark.celery_worker
def test_a_real_worker_on_redis_runs_a_task_against_the_test_database(celery_worker_process):
    from django.db import connection

    from console.tasks import worker_health

    result = worker_health.delay().get(timeout=30)
    assert result["database"] == connection.settings_dict["NAME"]
    assert result["db_time"]


def test_the_task_runs_eagerly_on_the_embedded_default(db):
    from console.tasks import worker_health

    assert worker_health.delay().get(timeout=5)["db_time"]
