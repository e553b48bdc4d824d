"""A transaction is durable within a bounded time of its end, the first ones after
start-up included: SIGKILL a process that bound after its last transaction ended."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from luthien_lab.store import Store

ROOT = Path(__file__).resolve().parents[2]
# Seconds between the last transaction's end and the kill. Not a figure (that is
# benchmarks/bench_durability.py's job, ~50 ms median, p95 under 0.37 s on a loaded
# VM): a margin, short enough that the old writer (first write 0.55-1.16 s) fails.
BOUND = 0.5
N = 20

# Starts a recorder, streams N transactions through an orchestrator at once, says so,
# then waits for more (never flushing) until it is killed.
CHILD = textwrap.dedent(
    """
    import asyncio, os, sys, time
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from luthien_lab import PolicyOrchestrator, Request, ScriptedLLMClient, UppercasePolicy
    from luthien_lab.store import DuckDBRecorder
    from luthien_lab.streaming.chunks import create_chunk

    chunks = [create_chunk(None, content=f"w{i} ") for i in range(40)]
    recorder = DuckDBRecorder(sys.argv[1])
    orch = PolicyOrchestrator(UppercasePolicy(), ScriptedLLMClient(chunks), listeners=[recorder])
    request = Request(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)

    async def main():
        for _ in range(int(sys.argv[2])):
            async for _chunk in orch.process_streaming_response(request):
                pass
        print("finished", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


def test_sigkill_after_the_bound_keeps_every_finished_transaction(tmp_path):
    path = tmp_path / "durable.duckdb"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(N)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "finished", proc.stderr.read() if proc.stderr else ""
        time.sleep(BOUND)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    with Store(path, read_only=True) as store:
        assert len(store.transactions()) == N
        counts = store.sql(
            "SELECT transaction_id, count(*) AS n FROM chunks "
            "WHERE direction = 'ingress' GROUP BY ALL"
        )
        assert counts["n"].tolist() == [40] * N  # each one whole
