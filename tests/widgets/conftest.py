from __future__ import annotations

import pytest


@pytest.fixture
def lab_loop():
    """lab.run's background loop, stopped after the test (no thread left behind)."""
    from luthien_lab import lab

    yield lab
    lab.shutdown()
