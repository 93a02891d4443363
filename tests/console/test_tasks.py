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


@pytest.mark.celery_worker
def test_beat_starts_with_the_schedule_in_code_as_readme_runs_it(tmp_path):
    """`celery -A console beat`, as docs/deploying.md runs it, loads every entry."""
    import os
    import subprocess
    import sys
    import time

    from django.conf import settings

    log = tmp_path / "beat.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "console", "beat", "-l", "debug"]
            + ["--schedule", str(tmp_path / "schedule"), "--max-interval", "1"],
            cwd=settings.BASE_DIR,
            env={**os.environ, "CELERY_TASK_ALWAYS_EAGER": "false"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while not all(name in log.read_text() for name in settings.CELERY_BEAT_SCHEDULE):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert "beat: Starting" in log.read_text()
