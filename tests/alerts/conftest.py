"""Fixtures of the alert rules' tests."""

import pytest

from alerts.services import alerts_evaluate


@pytest.fixture
def evaluate(django_capture_on_commit_callbacks):
    """Evaluate as the task does: commit, then deliver (eagerly, in-process)."""

    def run(org, now):
        with django_capture_on_commit_callbacks(execute=True):
            return alerts_evaluate(org=org, now=now)

    return run
