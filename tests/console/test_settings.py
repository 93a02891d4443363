import os
import re
import subprocess
import sys
from pathlib import Path

import plotly.offline
import pytest
from django.conf import settings
from django.contrib.staticfiles import finders

ROOT = Path(settings.BASE_DIR)


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    dropped = {"DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_mode_passes_check_deploy_without_warnings():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={
            "CONSOLE_MODE": "production",
            "SECRET_KEY": "k" * 20 + "-production-test-key-with-enough-entropy-0123456789",
            "ALLOWED_HOSTS": "console.example.com",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_mode_refuses_to_start_without_a_secret_key():
    result = run_manage("check", env={"CONSOLE_MODE": "production", "SECRET_KEY": ""})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_embedded_default_is_sqlite_eager_celery_and_local_memory_cache(tmp_path):
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, "
        "s.CACHES['default']['BACKEND'])",
        env={"SQLITE_PATH": str(tmp_path / "db.sqlite3")},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "True",
        "django.core.cache.backends.locmem.LocMemCache",
    ]


def test_redis_url_makes_redis_the_cache_and_the_celery_broker():
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings as s; from console.celery import app; "
        "print(s.CACHES['default']['BACKEND'], app.conf.broker_url, s.CELERY_TASK_ALWAYS_EAGER, "
        "app.conf.task_acks_late)",
        env={"REDIS_URL": "redis://127.0.0.1:6379/3"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.core.cache.backends.redis.RedisCache",
        "redis://127.0.0.1:6379/3",
        "False",
        "True",
    ]


@pytest.mark.parametrize("path", ["vendor/htmx.min.js", "vendor/plotly.min.js"])
def test_htmx_and_plotly_are_served_from_the_projects_static_folder(path):
    found = finders.find(path)
    assert found and Path(found).is_relative_to(ROOT / "static")


def test_vendored_plotly_js_matches_the_python_plotly_version():
    head = (ROOT / "static/vendor/plotly.min.js").read_text(errors="ignore")[:200]
    assert f"plotly.js v{plotly.offline.get_plotlyjs_version()}" in head


def test_no_template_loads_anything_from_another_host():
    offenders = []
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        if re.search(r"""(src|href)=["'](https?:)?//""", text):
            offenders.append(str(template))
    assert offenders == []
