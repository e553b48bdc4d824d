"""Real processes: two recorders on one file, lock errors naming the holder, SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from luthien_lab.errors import StoreLockedError
from luthien_lab.store import Store

ROOT = Path(__file__).resolve().parents[2]

CHILD_PRELUDE = textwrap.dedent(
    """
    import os, sys, time
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from litellm.types.utils import ModelResponseStream
    from luthien_lab.events import (
        ChunkEvent, TransactionFinished, TransactionInfo, TransactionResult
    )
    from luthien_lab.store import DuckDBRecorder

    def chunk(i):
        return ModelResponseStream(id="c", created=1, model="m",
            choices=[{"index": 0, "delta": {"content": f"t{i}"}, "finish_reason": None}])

    def record(recorder, tx, n):
        start = time.perf_counter_ns()
        recorder.transaction_started(TransactionInfo(tx, "m", "p", "P", {}, True, start))
        chunks = [chunk(i) for i in range(n)]
        for i, c in enumerate(chunks):
            recorder.chunk_received(ChunkEvent(tx, i, c, start + i))
            recorder.chunk_sent(ChunkEvent(tx, i, c, start + i))
        recorder.transaction_finished(TransactionFinished(tx, TransactionResult("ok", start + n,
            ingress_chunks=chunks, egress_chunks=chunks)))
    """
)


def spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD_PRELUDE + textwrap.dedent(code), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


def test_two_processes_record_to_one_file_while_a_third_reads(tmp_path):
    path = tmp_path / "shared.duckdb"
    Store(path).close()
    code = """
        path, prefix = sys.argv[1], sys.argv[2]
        with DuckDBRecorder(path) as recorder:
            for n in range(15):
                record(recorder, f"{prefix}-{n}", 40)
                if n % 3 == 0:
                    recorder.flush()
        print("done")
    """
    procs = [spawn(code, str(path), name) for name in ("notebook", "gateway")]
    reads = 0
    with Store(path, read_only=True) as reader:
        while any(p.poll() is None for p in procs):
            reader.transactions()
            reads += 1
            time.sleep(0.01)
    for proc in procs:
        assert finish(proc).strip() == "done"
    assert reads > 0
    with Store(path) as store:
        tx = store.transactions()
        assert len(tx) == 30
        assert set(tx["recorder_pid"]) == {p.pid for p in procs}
        counts = store.sql(
            "SELECT transaction_id, count(*) AS n FROM chunks GROUP BY ALL ORDER BY 1"
        )
        assert counts["n"].tolist() == [80] * 30


def test_exclusive_holder_is_named_in_store_locked_error(tmp_path):
    path = tmp_path / "held.duckdb"
    holder = spawn(
        """
        from luthien_lab.store import Store
        store = Store(sys.argv[1], exclusive=True)
        print("ready", flush=True)
        sys.stdin.read()
        store.close()
        """,
        str(path),
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLockedError) as info:
            Store(path, lock_timeout=0.3)
        message = str(info.value)
        assert f"PID {holder.pid}" in message
        assert "read_only=True" in message
        with pytest.raises(StoreLockedError):
            Store(path, read_only=True, lock_timeout=0.2).transactions()
    finally:
        holder.communicate("", timeout=30)
    with Store(path, read_only=True) as reader:  # released: readable now
        assert reader.transactions().empty


def test_foreign_duckdb_connection_is_named_in_store_locked_error(tmp_path):
    path = tmp_path / "foreign.duckdb"
    Store(path).close()
    holder = spawn(
        """
        import duckdb
        con = duckdb.connect(sys.argv[1])
        print("ready", flush=True)
        sys.stdin.read()
        con.close()
        """,
        str(path),
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLockedError, match=f"PID {holder.pid}"):
            Store(path, lock_timeout=0.3)
    finally:
        holder.communicate("", timeout=30)


def test_sigkill_mid_run_keeps_every_flushed_transaction(tmp_path):
    path = tmp_path / "crash.duckdb"
    proc = spawn(
        """
        recorder = DuckDBRecorder(sys.argv[1])
        n = 0
        while True:
            record(recorder, f"tx-{n}", 500)
            if n % 2 == 0:
                recorder.flush()
                print(f"flushed {n}", flush=True)
            n += 1
        """,
        str(path),
    )
    flushed = -1
    try:
        assert proc.stdout is not None
        while flushed < 8:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            flushed = int(line.split()[1])
        time.sleep(0.05)  # let it get into the middle of more writes
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with Store(path) as store:
        ids = set(store.transactions()["transaction_id"])
        assert {f"tx-{n}" for n in range(flushed + 1)} <= ids
        counts = store.sql("SELECT transaction_id, count(*) AS n FROM chunks GROUP BY ALL")
        assert set(counts["n"]) == {1000}  # every written transaction is complete
        assert set(counts["transaction_id"]) == ids


async def test_a_store_held_by_another_process_parks_then_writes(tmp_path):
    """Past lock_timeout the recorder parks what it could not write, bad transactions
    included, and writes it all once the other process lets go."""
    import asyncio

    from store_testkit import orchestrator, request, run_all

    from luthien_lab.store import DuckDBRecorder

    path = tmp_path / "held-later.duckdb"
    recorder = DuckDBRecorder(Store(path, lock_timeout=0.3))
    holder = spawn(
        """
        from luthien_lab.store import Store
        store = Store(sys.argv[1], exclusive=True)
        print("ready", flush=True)
        sys.stdin.readline()
        store.close()
        print("released", flush=True)
        sys.stdin.read()
        """,
        str(path),
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "ready"
        orch = orchestrator(recorder, replies={"odd": ["\ud800"]})
        await run_all(orch, [request("a"), request("odd"), request("b")])
        recorder.flush()
        assert recorder.parked == 3
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
        deadline = time.monotonic() + 60  # a hang guard: the retry runs every second
        while recorder.parked and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert recorder.parked == 0
        frame = recorder.store.transactions()
        assert len(frame) == 3
        assert sum("replayed" in (notes or "") for notes in frame["storage_notes"]) == 3
    finally:
        holder.communicate("", timeout=30)
        recorder.close()
        recorder.store.close()
