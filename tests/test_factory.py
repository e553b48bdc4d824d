"""``create_default_orchestrator``: records to the store unless told not to."""

from __future__ import annotations

import os

import pytest
from support import text_stream

from luthien_lab import (
    NoOpPolicy,
    ScriptedLLMClient,
    UppercasePolicy,
    create_default_orchestrator,
)
from luthien_lab.request import Request
from luthien_lab.store import DuckDBRecorder, open_store

REQUEST = Request(model="scripted", messages=[{"role": "user", "content": "hi"}], stream=True)


async def _stream(orchestrator) -> str:
    parts = []
    async for chunk in orchestrator.process_streaming_response(REQUEST):
        parts.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
    return "".join(parts)


def _recorder(orchestrator) -> DuckDBRecorder:
    recorders = [x for x in orchestrator.listeners if isinstance(x, DuckDBRecorder)]
    assert len(recorders) == 1
    return recorders[0]


async def test_records_to_the_default_store(tmp_path, monkeypatch):
    path = tmp_path / "default.duckdb"
    monkeypatch.setenv("LUTHIEN_LAB_STORE", str(path))
    orchestrator = create_default_orchestrator(
        UppercasePolicy(), ScriptedLLMClient(text_stream("hel", "lo"))
    )
    recorder = _recorder(orchestrator)
    try:
        assert await _stream(orchestrator) == "HELLO"
        await recorder.flush_async()
    finally:
        recorder.close()
        recorder.store.close()
    store = open_store(path, read_only=True)
    try:
        transactions = store.transactions()
        assert transactions["status"].tolist() == ["ok"]
        assert transactions["policy_class"].iloc[0].endswith("UppercasePolicy")
        pair = store.response_pair(transactions["transaction_id"].iloc[0])
        responses = pair["response"]
        assert responses["original"]["choices"][0]["message"]["content"] == "hello"
        assert responses["final"]["choices"][0]["message"]["content"] == "HELLO"
        assert len(store.chunks(transactions["transaction_id"].iloc[0])) > 0
    finally:
        store.close()


async def test_store_none_records_nothing(tmp_path, monkeypatch):
    path = tmp_path / "never.duckdb"
    monkeypatch.setenv("LUTHIEN_LAB_STORE", str(path))
    orchestrator = create_default_orchestrator(
        NoOpPolicy(), ScriptedLLMClient(text_stream("x")), store=None
    )
    assert not [x for x in orchestrator.listeners if isinstance(x, DuckDBRecorder)]
    assert await _stream(orchestrator) == "x"
    assert not os.path.exists(path)


@pytest.mark.parametrize("as_text", [True, False])
async def test_a_given_path_is_recorded_to(tmp_path, monkeypatch, as_text):
    monkeypatch.setenv("LUTHIEN_LAB_STORE", str(tmp_path / "not-this.duckdb"))
    path = tmp_path / "chosen.duckdb"
    orchestrator = create_default_orchestrator(
        NoOpPolicy(), ScriptedLLMClient(text_stream("y")), store=str(path) if as_text else path
    )
    recorder = _recorder(orchestrator)
    try:
        await _stream(orchestrator)
        await recorder.flush_async()
    finally:
        recorder.close()
        recorder.store.close()
    assert not (tmp_path / "not-this.duckdb").exists()
    store = open_store(path, read_only=True)
    try:
        assert len(store.transactions()) == 1
    finally:
        store.close()
