"""What the bad-input files share: the fuzzing budget, the count of inputs tried (printed
once per file by the `tried_summary` fixture in conftest.py), posting and counting records."""

import itertools
import json
from collections import Counter

from hypothesis import HealthCheck
from hypothesis import settings as hsettings

from usage.models import Job, MatchingRun, Query, WorkerSession

TRIED: Counter = Counter()
_ids = itertools.count(1)

# Bounded so the whole file runs in well under 90 s on SQLite.
FUZZ = hsettings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# The endpoints that take a body (a write or a JSON payload).
WRITE_AND_BODY_ENDPOINTS = [
    "/api/v1/usage/records",
    "/api/v1/jobs",
    "/api/v1/jobs/j-1/transition",
    "/api/v1/account/credits",
]


def post_records(client, api, body) -> object:
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(
        "/api/v1/usage/records", data, content_type="application/json", headers=api["headers"]
    )


def stored_count(org) -> int:
    models = (Query, WorkerSession, MatchingRun, Job)
    return sum(model.objects.filter(organization=org).count() for model in models)


def stored_ids(org) -> set[str]:
    ids: set[str] = set()
    for model in (Query, WorkerSession, MatchingRun, Job):
        ids.update(model.objects.filter(organization=org).values_list("client_id", flat=True))
    return ids
