"""Recorder figures: hot-path cost per chunk and the time to write a big transaction.

Run: ``python benchmarks/bench_recorder.py``. ``recorder_figures()`` returns the numbers
(a dict) so that other benchmarks can reuse them.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

HOT_PATH_TARGET_US = 2.0
WRITE_TARGET_MS = 50.0


def _chunks(n: int) -> list[Any]:
    from litellm.types.utils import ModelResponseStream

    chunks = []
    for i in range(n):
        delta: dict[str, Any] = {"content": f"token {i} ", "role": "assistant" if i == 0 else None}
        if i % 50 == 25:
            delta = {
                "content": None,
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1" if i == 25 else None,
                        "type": "function",
                        "function": {"name": "lookup" if i == 25 else None, "arguments": '{"q'},
                    }
                ],
            }
        chunks.append(
            ModelResponseStream(
                id="chatcmpl-bench",
                created=1700000000,
                model="bench-model",
                choices=[
                    {
                        "index": 0,
                        "delta": delta,
                        "finish_reason": "stop" if i == n - 1 else None,
                    }
                ],
            )
        )
    return chunks


def _info(tx: str, start: int) -> Any:
    from luthien_lab.events import TransactionInfo

    return TransactionInfo(
        transaction_id=tx,
        model="bench-model",
        provider="bench",
        policy_class="bench.Policy",
        policy_config={"threshold": 1},
        streaming=True,
        start_ns=start,
    )


def hot_path_us_per_chunk(n: int = 10_000, repeats: int = 5) -> float:
    """Median cost of chunk_received + hook_fired + chunk_sent, in microseconds."""
    from luthien_lab.events import ChunkEvent, HookFired
    from luthien_lab.store import DuckDBRecorder, Store
    from luthien_lab.streaming.blocks import ContentStreamBlock

    chunks = _chunks(n)
    block = ContentStreamBlock()
    store = Store.memory()
    recorder = DuckDBRecorder(store)
    results = []
    try:
        for r in range(repeats):
            tx = f"hot-{r}"
            recorder.transaction_started(_info(tx, time.perf_counter_ns()))
            received, fired, sent = (
                recorder.chunk_received,
                recorder.hook_fired,
                recorder.chunk_sent,
            )
            t = time.perf_counter_ns()
            start = time.perf_counter_ns()
            for i in range(n):
                chunk = chunks[i]
                # The records are built here as the orchestrator builds them.
                received(ChunkEvent(tx, i, chunk, t))
                fired(HookFired(tx, "on_content_delta", i, block, t, t, i, i + 1))
                sent(ChunkEvent(tx, i, chunk, t))
            results.append((time.perf_counter_ns() - start) / n / 1000)
            recorder._bufs.pop(tx)  # not written: this measures the hot path only
    finally:
        recorder.close()
        store.close()
    return statistics.median(results)


def write_ms(
    n: int = 10_000, repeats: int = 11, path: str | None = None, idle: bool = True
) -> float:
    """Median time from transaction_finished to written (flush returns: committed),
    in ms, for a transaction of ``n`` ingress + ``n`` egress chunks and ``n`` hook
    rows, including building its original and final responses.

    ``idle``: each transaction ends with the writer idle, as after a real stream of
    that length (seconds): a file store has finished detaching (checkpointing) the
    previous write. Otherwise the next transaction is fed and finished right after
    the previous flush, so that its time includes what is left of that checkpoint."""
    from luthien_lab.events import (
        ChunkEvent,
        HookFired,
        RequestProcessed,
        TransactionFinished,
        TransactionResult,
    )
    from luthien_lab.request import Request
    from luthien_lab.store import DuckDBRecorder, Store
    from luthien_lab.streaming.blocks import ContentStreamBlock

    chunks = _chunks(n)
    block = ContentStreamBlock()
    request = Request(model="bench-model", messages=[{"role": "user", "content": "hi"}])
    store = Store(path) if path else Store.memory()
    recorder = DuckDBRecorder(store)
    times = []
    try:
        for r in range(repeats + 1):
            tx = uuid.uuid4().hex  # as the orchestrator names transactions
            t0 = time.perf_counter_ns()
            recorder.transaction_started(_info(tx, t0))
            recorder.request_processed(RequestProcessed(tx, request, request))
            for i in range(n):
                t = t0 + i * 1000
                recorder.chunk_received(ChunkEvent(tx, i, chunks[i], t))
                hook = HookFired(tx, "on_content_delta", i, block, t, t + 100, i, i + 1)
                recorder.hook_fired(hook)
                recorder.chunk_sent(ChunkEvent(tx, i, chunks[i], t + 200))
            if idle:
                store.sql("SELECT 1")  # needs the store: waits until the writer let go
            start = time.perf_counter()
            # As the orchestrator does: the result carries the chunks.
            result = TransactionResult(
                "ok", t0 + n * 1000, ingress_chunks=list(chunks), egress_chunks=list(chunks)
            )
            recorder.transaction_finished(TransactionFinished(tx, result))
            recorder.flush()
            if r:  # the first one warms imports and caches
                times.append((time.perf_counter() - start) * 1000)
    finally:
        recorder.close()
        store.close()
    return statistics.median(times)


def recorder_figures() -> dict[str, float]:
    """The recorder's figures: ``hot_path_us_per_chunk``, ``write_10k_ms_memory``,
    ``write_10k_ms_file`` (both from an idle writer) and
    ``write_10k_ms_file_back_to_back``."""
    with tempfile.TemporaryDirectory() as folder:
        file_ms = write_ms(path=os.path.join(folder, "bench.duckdb"))
    with tempfile.TemporaryDirectory() as folder:
        busy_ms = write_ms(path=os.path.join(folder, "bench.duckdb"), idle=False)
    return {
        "hot_path_us_per_chunk": hot_path_us_per_chunk(),
        "write_10k_ms_memory": write_ms(),
        "write_10k_ms_file": file_ms,
        "write_10k_ms_file_back_to_back": busy_ms,
    }


def pipeline_figures(n: int = 10_000, repeats: int = 5) -> dict[str, float]:
    """The pipeline's per-chunk overhead (us), with and without the DuckDB recorder
    listening, for passthrough and uppercase, measured as bench_pipeline does; and,
    with recording, the write after each real stream (``... write ms``: from the end
    of the stream to committed, in-memory store, every hook the policy fired)."""
    import asyncio

    sys.path.insert(0, os.path.dirname(__file__))
    from bench_pipeline import REQUEST, make_stream, per_chunk

    from luthien_lab import NoOpPolicy, PolicyOrchestrator, UppercasePolicy
    from luthien_lab.clients import ScriptedLLMClient
    from luthien_lab.store import DuckDBRecorder, Store

    async def measure(policy: Any, record: bool) -> tuple[float, float]:
        chunks = make_stream(n)
        if not record:
            cost, _first = await per_chunk(policy, chunks, repeats)
            return cost * 1e6, 0.0
        recorder = DuckDBRecorder(Store.memory())
        try:
            client = ScriptedLLMClient(chunks)
            orchestrator = PolicyOrchestrator(policy, client, listeners=[recorder])
            costs, writes = [], []
            for _ in range(repeats):
                start = time.perf_counter()
                async for _chunk in client.stream(None):  # type: ignore[arg-type]
                    pass
                direct = time.perf_counter() - start
                start = time.perf_counter()
                async for _chunk in orchestrator.process_streaming_response(REQUEST):
                    pass
                end = time.perf_counter()
                costs.append((end - start - direct) / n)
                recorder.flush()  # the write happens off the loop, between runs
                writes.append((time.perf_counter() - end) * 1000)
            return statistics.median(costs) * 1e6, statistics.median(writes)
        finally:
            recorder.close()

    out = {}
    for policy in (NoOpPolicy(), UppercasePolicy()):
        name = type(policy).__name__
        out[f"{name} without recording"] = asyncio.run(measure(policy, False))[0]
        cost, write = asyncio.run(measure(policy, True))
        out[f"{name} with recording"] = cost
        out[f"{name} write ms"] = write
    return out


def main() -> None:
    figures = recorder_figures()
    hot = figures["hot_path_us_per_chunk"]
    print(
        f"recorder hot path (chunk_received + hook_fired + chunk_sent): {hot:.2f} us/chunk "
        f"(target < {HOT_PATH_TARGET_US})"
    )
    print(
        "write a finished 10,000-chunk transaction (10k in + 10k out + 10k hooks), "
        f"finish to committed (target < {WRITE_TARGET_MS} ms):"
    )
    print(f"  in memory                            {figures['write_10k_ms_memory']:6.1f} ms")
    print(f"  to a file (attach, insert, commit)   {figures['write_10k_ms_file']:6.1f} ms")
    print(
        "  to a file, each ending right after the previous write (throughput: the "
        "previous write is still being checkpointed) "
        f"{figures['write_10k_ms_file_back_to_back']:6.1f} ms"
    )
    figures = pipeline_figures()
    print("pipeline overhead per chunk, 10,000-chunk streams (us):")
    for name, value in figures.items():
        if not name.endswith("write ms"):
            print(f"  {name:<34}{value:8.2f}")
    print("write after such a stream, stream end to committed, in memory (ms):")
    for name, value in figures.items():
        if name.endswith("write ms"):
            print(f"  {name.removesuffix(' write ms'):<34}{value:8.1f}")


if __name__ == "__main__":
    main()
