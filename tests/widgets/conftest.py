from __future__ import annotations

import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture
def store():
    from luthien_lab.store import Store

    s = Store.memory()
    yield s
    s.close()


@pytest.fixture
def lab_loop():
    """lab.run's background loop, stopped after the test (no thread left behind)."""
    from luthien_lab import lab

    yield lab
    lab.shutdown()
