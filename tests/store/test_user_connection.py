"""A DuckDB connection the user opened on the store file, in the same process (the
natural way to query it from a notebook), never costs a recording."""

from __future__ import annotations

import asyncio
import time

import duckdb
from store_testkit import orchestrator, request, run_all

from luthien_lab.store import DuckDBRecorder, Store


async def _wait_for(predicate, seconds: float = 60.0) -> None:
    """A hang guard, not a timing assertion: the retry runs every second or so."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "gave up waiting"
        await asyncio.sleep(0.05)


async def test_read_only_user_connection_delays_writes_and_loses_none(tmp_path, caplog):
    path = str(tmp_path / "nb.duckdb")
    Store(path).close()
    user = duckdb.connect(path, read_only=True)
    recorder = DuckDBRecorder(path)
    try:
        orch = orchestrator(recorder)
        await run_all(orch, [request(f"q{i}") for i in range(3)])
        recorder.flush()  # nothing failed: the store is only busy
        assert recorder.parked == 3
        # The query API works beside the user's connection.
        assert recorder.store.transactions().empty
        with Store(path, read_only=True) as reader:
            assert reader.transactions().empty
        assert user.execute("SELECT count(*) FROM transactions").fetchone() == (0,)
        assert "open read-only in this process" in caplog.text
        user.close()
        await _wait_for(lambda: recorder.parked == 0)
        assert len(recorder.store.transactions()) == 3
        assert not (tmp_path / "nb.duckdb.deadletter.jsonl").exists()
        await run_all(orch, [request("later")])
        recorder.flush()
        assert len(recorder.store.transactions()) == 4
    finally:
        user.close()
        recorder.close()


async def test_read_write_user_connection_is_written_through(tmp_path):
    path = str(tmp_path / "nb-rw.duckdb")
    Store(path).close()
    user = duckdb.connect(path)
    recorder = DuckDBRecorder(path)
    try:
        orch = orchestrator(recorder)
        await run_all(orch, [request(f"q{i}") for i in range(3)])
        recorder.flush()
        assert recorder.parked == 0
        # The user's own connection sees them at once, and the query API works too.
        assert user.execute("SELECT count(*) FROM transactions").fetchone() == (3,)
        assert len(recorder.store.transactions()) == 3
        assert recorder.store.chunks(recorder.store.transactions()["transaction_id"][0]).shape[0]
    finally:
        recorder.close()
        user.close()
    with Store(path, read_only=True) as reader:
        assert len(reader.transactions()) == 3


async def test_opening_a_recorder_beside_a_read_only_connection(tmp_path):
    """The recorder opens (the file is current) and writes once the user is done."""
    path = str(tmp_path / "nb-first.duckdb")
    Store(path).close()
    user = duckdb.connect(path, read_only=True)
    try:
        recorder = DuckDBRecorder(path)
        await run_all(orchestrator(recorder), [request("q")])
        recorder.flush()
    finally:
        user.close()
    recorder.close()  # a last offer on close writes what waited
    with Store(path, read_only=True) as reader:
        assert len(reader.transactions()) == 1
