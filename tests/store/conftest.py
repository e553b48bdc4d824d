from __future__ import annotations

import pytest


@pytest.fixture
def recorder(store):
    from luthien_lab.store import DuckDBRecorder

    r = DuckDBRecorder(store)
    yield r
    r.close()
