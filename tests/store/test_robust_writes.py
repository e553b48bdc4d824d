"""A transaction that cannot be stored as it is: stored safely and flagged, and never
takes another client's transaction with it; one that cannot be written at all waits in
the dead-letter file and is written on the next open."""

from __future__ import annotations

import json
import math

import pytest
from store_testkit import deep, orchestrator, request, run_all

from luthien_lab.errors import StoreError
from luthien_lab.policies.base import Policy
from luthien_lab.store import DuckDBRecorder, Store


def by_marker(store: Store) -> dict[str, dict]:
    """Each stored transaction by the user message of its request."""
    frame = store.sql(
        "SELECT t.transaction_id, t.status, t.storage_notes, "
        "json_extract_string(p.original_request, '$.messages[0].content') AS marker, "
        "p.original_request FROM transactions t JOIN payloads p USING (transaction_id)"
    )
    out = {}
    for row in frame.to_dict("records"):
        notes = row["storage_notes"]
        row["notes"] = json.loads(notes) if isinstance(notes, str) else []
        out[row["marker"]] = row
    return out


def actions(row: dict) -> set[tuple[str, str]]:
    return {(note["field"], note["action"]) for note in row["notes"]}


async def test_bad_requests_are_stored_safely_and_lose_no_other_transaction(tmp_path):
    recorder = DuckDBRecorder(tmp_path / "bad.duckdb")
    orch = orchestrator(recorder, replies={"bad-chunk": ["x\ud800y", "!"]})
    requests = [
        request("good-1"),
        request("bad-deep", deep=deep(500)),
        request("bad-surrogate", metadata={"note": "a\ud800b"}),
        request("bad-chunk"),
        request("good-2"),
    ]
    try:
        # The writer waits meanwhile, so that the bad ones share a batch with good ones.
        with recorder.store._mutex:
            assert await run_all(orch, requests) == ["ok", "ok", "ok", "x\ud800y!", "ok"]
        recorder.flush()
        rows = by_marker(recorder.store)
        assert sorted(rows) == ["bad-chunk", "bad-deep", "bad-surrogate", "good-1", "good-2"]
        assert {row["status"] for row in rows.values()} == {"ok"}
        assert rows["good-1"]["notes"] == rows["good-2"]["notes"] == []

        from luthien_lab.store._safe import DEPTH_MARKER

        assert ("original_request", "depth_cut") in actions(rows["bad-deep"])
        stored = json.loads(rows["bad-deep"]["original_request"])["deep"]
        levels = 0
        while isinstance(stored, list):
            stored, levels = stored[0], levels + 1
        assert (levels, stored) == (127, DEPTH_MARKER)  # the request is level 0

        assert ("original_request", "surrogates_escaped") in actions(rows["bad-surrogate"])
        metadata = json.loads(rows["bad-surrogate"]["original_request"])["metadata"]
        assert metadata == {"note": "a\\ud800b"}  # the six characters, not the code point

        bad_chunk = rows["bad-chunk"]
        assert {("transaction", "rewritten"), ("chunks", "surrogates_escaped")} <= actions(
            bad_chunk
        )
        chunks = recorder.store.chunks(bad_chunk["transaction_id"], "ingress")
        assert chunks["content"].tolist() == ["", "x\\ud800y", "!"]
        good = recorder.store.chunks(rows["good-2"]["transaction_id"])
        assert good["content"].tolist() == ["", "o", "k", "", "o", "k"]
    finally:
        recorder.close()


class EventfulPolicy(Policy):
    """Emits odd event data and metric labels from on_request."""

    async def on_request(self, request, context):
        context.observability.emit_event("score", {"value": math.nan, "top": math.inf})
        context.observability.emit_event("name-\ud800", {"ok": True})
        context.observability.record_metric("m", 1.0, {"label": "-\udfff-"})
        return request


async def test_huge_texts_non_finite_numbers_and_odd_event_names(recorder, store):
    max_text = 16 * 1024 * 1024
    orch = orchestrator(recorder, policy=EventfulPolicy())
    await run_all(orch, [request("huge", blob="h" * (max_text + 1000)), request("plain")])
    recorder.flush()
    rows = by_marker(store)
    assert sorted(rows) == ["huge", "plain"]
    from luthien_lab.store._safe import MAX_TEXT

    assert max_text == MAX_TEXT
    blob = json.loads(rows["huge"]["original_request"])["blob"]
    marker = f"…[luthien-lab: truncated, {MAX_TEXT + 1000} characters in all]"
    assert len(blob) == MAX_TEXT
    assert blob == "h" * (MAX_TEXT - len(marker)) + marker
    assert ("original_request", "truncated") in actions(rows["huge"])
    events = store.events(rows["plain"]["transaction_id"])
    assert events["name"].tolist() == ["score", "name-\\ud800"]
    assert json.loads(events["data"].iloc[0]) == {"value": "NaN", "top": "Infinity"}
    labels = store.metrics(rows["plain"]["transaction_id"])["labels"].tolist()
    assert [json.loads(x) for x in labels] == [{"label": "-\\udfff-"}]


async def test_an_unwritable_transaction_waits_in_the_dead_letter_file(tmp_path, monkeypatch):
    path = tmp_path / "dl.duckdb"
    recorder = DuckDBRecorder(path)
    real = recorder.store.write_tables

    def refuse_poison(tables, *args, **kwargs):
        texts = tables["payloads"].column("original_request").to_pylist()
        if any("poison" in (text or "") for text in texts):
            raise RuntimeError("DuckDB refused it")
        return real(tables, *args, **kwargs)

    monkeypatch.setattr(recorder.store, "write_tables", refuse_poison)
    orch = orchestrator(recorder)
    try:
        with recorder.store._mutex:
            await run_all(orch, [request("before"), request("poison"), request("after")])
        with pytest.raises(StoreError, match="DuckDB refused it"):
            recorder.flush()
        assert sorted(by_marker(recorder.store)) == ["after", "before"]
    finally:
        recorder.close()
    letters = (tmp_path / "dl.duckdb.deadletter.jsonl").read_text().splitlines()
    assert len(letters) == 1
    parked = json.loads(letters[0])
    assert parked["reason"] == "failed"
    assert "DuckDB refused it" in parked["error"]
    [row] = parked["tables"]["transactions"]
    assert "minimal" in row["storage_notes"]  # it was tried safe, then minimal

    with Store(path) as reopened:  # the next open writes it
        rows = by_marker(reopened)
        assert sorted(rows) == ["after", "before", "poison"]
        assert ("transaction", "replayed") in actions(rows["poison"])
    assert not (tmp_path / "dl.duckdb.deadletter.jsonl").exists()


def test_replaying_twice_never_duplicates(tmp_path):
    """A replay that wrote its rows but died before emptying the file writes them once."""
    from store_testkit import drive_stream, make_chunk

    path = tmp_path / "twice.duckdb"
    with DuckDBRecorder(path) as recorder:
        drive_stream(recorder, "tx-once", [make_chunk("a")])
    store = Store(path)
    try:
        tables = {
            name: store.sql(f"SELECT * FROM {name}").pipe(_arrow, name)
            for name in ("transactions", "payloads", "chunk_rows", "hooks")
        }
        store.dead_letters.park(tables, error="test", reason="deferred")
        assert store.replay_dead_letters() == {"tx-once"}
        assert store.sql("SELECT count(*) AS n FROM transactions")["n"][0] == 1
        assert store.sql("SELECT count(*) AS n FROM chunk_rows")["n"][0] == 1
        assert not store.dead_letters.pending()
    finally:
        store.close()


def _arrow(frame, name):
    import pyarrow as pa

    from luthien_lab.store._arrow_schema import arrow_schema

    schema = arrow_schema(name)
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


def test_a_memory_store_keeps_its_dead_letters_in_memory(recorder, store, monkeypatch):
    from store_testkit import drive_stream, make_chunk

    real = store.write_tables
    monkeypatch.setattr(store, "write_tables", _raising)
    drive_stream(recorder, "tx-m", [make_chunk("a")])
    with pytest.raises(StoreError, match="no space left"):
        recorder.flush()
    assert len(store.dead_letters) == 1
    monkeypatch.setattr(store, "write_tables", real)
    assert store.replay_dead_letters() == {"tx-m"}
    assert store.transactions()["transaction_id"].tolist() == ["tx-m"]
    assert len(store.dead_letters) == 0


def _raising(*args, **kwargs):
    raise OSError("no space left on device")
