"""Shared test fixtures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# Tests never reach a real provider, even when a developer has keys set.
os.environ["LUTHIEN_LAB_PROVIDER"] = "local"

ROOT = Path(__file__).resolve().parents[1]
# Four chunk streams recorded from real providers, kept in the repo (README.md there).
RECORDED = ROOT / "tests" / "fixtures" / "recorded-chunks"
RECORDED_FILES = {
    "text": "no_tools_used_chunks.json",
    "anthropic_tools": "anthropic_multiple_tools_chunks.json",
    "anthropic_thinking": "anthropic_extended_thinking_chunks.json",
    "openai_tools": "gpt_multiple_tools_chunks.json",
}


def load_recorded(name: str) -> list[dict]:
    path = RECORDED / RECORDED_FILES[name]
    if not path.exists():
        pytest.skip(f"recorded provider chunks not available ({path})")
    return json.loads(path.read_text())


@pytest.fixture(params=sorted(RECORDED_FILES))
def recorded(request) -> tuple[str, list[dict]]:
    """Each of the four streams recorded from real providers (skipped when absent)."""
    return request.param, load_recorded(request.param)


@pytest.fixture(scope="session")
def provider():
    """The session's local provider (a directory's conftest may define its own).
    Shared: select answers with a script key (``provider.script``) or a unique prompt."""
    from luthien_lab.provider import local_provider

    with local_provider() as p:
        yield p


@pytest.fixture
def store():
    """An in-memory DuckDB store, closed after the test."""
    from luthien_lab.store import Store

    s = Store.memory()
    yield s
    s.close()
