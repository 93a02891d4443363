"""Counting the faults the reliability tests inject, for one summary line at the end.

Each fault test calls `fault_injected(kind)`; the first call registers a tiny pytest
plugin whose terminal summary prints the totals (shown with -q too, no -s needed).
Kept out of conftest.py so that other suites in this folder own theirs.
"""

import time
from collections import Counter

import pytest

FAULTS: Counter[str] = Counter()
TIMINGS: dict[str, list[float]] = {}


class _Summary:
    def pytest_terminal_summary(self, terminalreporter):
        if not FAULTS:
            return
        detail = ", ".join(f"{kind} {n}" for kind, n in sorted(FAULTS.items()))
        terminalreporter.write_sep("-", "faults injected")
        terminalreporter.write_line(f"faults injected: {sum(FAULTS.values())} ({detail})")
        for label, seconds in sorted(TIMINGS.items()):
            worst = max(seconds)
            terminalreporter.write_line(
                f"  {label}: {len(seconds)} timed, worst {worst * 1000:.0f} ms"
            )


_summary = _Summary()


@pytest.fixture(autouse=True, scope="session")
def fault_summary(request):
    """Autouse it from a test module (import it) to get the summary line."""
    if not request.config.pluginmanager.is_registered(_summary):
        request.config.pluginmanager.register(_summary, "reliability-fault-summary")
    yield


def fault_injected(kind: str, n: int = 1) -> None:
    FAULTS[kind] += n


class timed:
    """`with timed("label"):` records how long the block took for the summary."""

    def __init__(self, label: str):
        self.label = label

    def __enter__(self):
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.seconds = time.monotonic() - self.started
        TIMINGS.setdefault(self.label, []).append(self.seconds)
        return False
