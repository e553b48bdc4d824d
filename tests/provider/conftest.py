"""Fixtures for the local-provider tests: one provider per module, litellm imported."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from luthien_lab.provider import LocalProvider


@pytest.fixture(scope="module")
def provider():
    with LocalProvider() as p:
        yield p


@pytest.fixture(scope="module")
def litellm():
    import litellm as _litellm

    _litellm.suppress_debug_info = True
    return _litellm
