"""README's two commands find a Python 3.12+ wherever the user keeps one, and say what
to install where there is none (never pip's resolver error)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def _find(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", ". script/_python.sh; find_python"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _old_python(folder: Path) -> Path:
    """A `python3` on PATH that is too old, like this machine's 3.11."""
    folder.mkdir(parents=True)
    fake = folder / "python3"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    return folder


def _bare_env(tmp_path: Path, path: str) -> dict:
    return {"PATH": path, "HOME": str(tmp_path / "home"), "LANG": "C.UTF-8"}


@pytest.mark.skipif(sys.version_info < (3, 12), reason="runs under the project's Python")
def test_a_python_under_pyenv_is_found_when_python3_on_path_is_too_old(tmp_path):
    old = _old_python(tmp_path / "bin")
    pyenv = tmp_path / "pyenv" / "versions" / "3.13.0" / "bin"
    pyenv.mkdir(parents=True)
    (pyenv / "python3").symlink_to(sys.executable)
    env = {**_bare_env(tmp_path, f"{old}:/usr/bin:/bin"), "PYENV_ROOT": str(tmp_path / "pyenv")}
    found = _find(env)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == str(pyenv / "python3")


def test_setup_stops_with_one_line_naming_what_to_install_when_there_is_none(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(ROOT / "script", project / "script")
    old = _old_python(tmp_path / "bin")
    # Only interpreters too old for Django 6 (or none) are on this PATH.
    system = ":".join(d for d in ("/bin", "/usr/bin") if not _has_new_python(Path(d)))
    env = _bare_env(tmp_path, f"{old}:{system}")
    done = subprocess.run(
        [str(project / "script" / "setup")],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Python 3.12 or newer" in lines[0] and "pyenv install" in lines[0]
    assert "ResolutionImpossible" not in done.stderr + done.stdout
    assert not (project / ".venv").exists()


def _has_new_python(folder: Path) -> bool:
    for name in ("python3.12", "python3.13", "python3.14", "python3"):
        candidate = folder / name
        if candidate.exists() and os.access(candidate, os.X_OK):
            check = subprocess.run(
                [str(candidate), "-c", "import sys; sys.exit(sys.version_info < (3, 12))"],
                capture_output=True,
                timeout=30,
            )
            if check.returncode == 0:
                return True
    return False
