from datetime import UTC, datetime

import pytest
import time_machine

# Tests of usage run at a fixed instant so record times are never "in the future".
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller
