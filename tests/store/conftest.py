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
def recorder(store):
    from luthien_lab.store import DuckDBRecorder

    r = DuckDBRecorder(store)
    yield r
    r.close()
