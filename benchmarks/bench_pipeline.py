"""Pipeline overhead per chunk, time to first chunk and end-of-stream delay.

Run: ``python benchmarks/bench_pipeline.py`` (``--quick`` for a fast smoke run).

Per-chunk cost = (time to consume the stream through the orchestrator - time to
consume the same upstream directly) / chunks, reported in microseconds and as a
ratio to ``json.loads`` of the same chunks' JSON measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from luthien_lab import NoOpPolicy, PolicyOrchestrator, Request, UppercasePolicy
from luthien_lab.clients import ScriptedLLMClient
from luthien_lab.streaming.chunks import create_chunk

REQUEST = Request(model="bench", messages=[{"role": "user", "content": "hi"}])
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "the",
    "lazy",
    "dog",
    "and",
    "keeps",
    "on",
    "running",
]


def make_stream(n: int) -> list:
    """A realistic text stream: role chunk, n-2 word deltas, finish chunk."""
    header = create_chunk(None, role="assistant", content="")
    chunks = [header]
    for i in range(n - 2):
        chunks.append(create_chunk(header, content=" " + WORDS[i % len(WORDS)]))
    chunks.append(create_chunk(header, finish_reason="stop"))
    return chunks


class PacedClient(ScriptedLLMClient):
    """Sleeps ``pace`` before each chunk and notes when it handed over the last one."""

    def __init__(self, chunks, pace: float):
        super().__init__(chunks)
        self.pace = pace
        self.last_yield_ns = 0

    async def stream(self, request):
        for chunk in self._chunks:
            await asyncio.sleep(self.pace)
            self.last_yield_ns = time.perf_counter_ns()
            yield chunk


async def consume_direct(client) -> float:
    start = time.perf_counter()
    async for _ in client.stream(REQUEST):
        pass
    return time.perf_counter() - start


async def consume_pipeline(orchestrator) -> tuple[float, float]:
    start = time.perf_counter()
    first = None
    async for _ in orchestrator.process_streaming_response(REQUEST):
        if first is None:
            first = time.perf_counter() - start
    return time.perf_counter() - start, first or 0.0


def json_loads_cost(chunks) -> float:
    texts = [c.model_dump_json() for c in chunks]
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for text in texts:
            json.loads(text)
        best = min(best, time.perf_counter() - start)
    return best / len(texts)


async def per_chunk(policy, chunks, repeats: int) -> tuple[float, float]:
    client = ScriptedLLMClient(chunks)
    orchestrator = PolicyOrchestrator(policy, client)
    overheads, firsts = [], []
    for _ in range(repeats):
        direct = await consume_direct(client)
        total, first = await consume_pipeline(orchestrator)
        overheads.append((total - direct) / len(chunks))
        firsts.append(first)
    return statistics.median(overheads), statistics.median(firsts)


async def end_of_stream_delay(policy, n: int, repeats: int) -> float:
    delays = []
    for _ in range(repeats):
        client = PacedClient(make_stream(n), pace=0.001)
        orchestrator = PolicyOrchestrator(policy, client)
        async for _ in orchestrator.process_streaming_response(REQUEST):
            pass
        delays.append(time.perf_counter_ns() - client.last_yield_ns)
    return statistics.median(delays) / 1e6


async def main(quick: bool) -> None:
    sizes = (100, 1000) if quick else (100, 1000, 10000)
    repeats = 3 if quick else 7
    print(f"python {sys.version.split()[0]}, {repeats} repeats, medians")
    print(
        f"{'policy':<12}{'chunks':>8}{'us/chunk':>10}{'json.loads us':>15}{'ratio':>8}"
        f"{'first chunk ms':>16}{'end delay ms':>14}"
    )
    for policy in (NoOpPolicy(), UppercasePolicy()):
        for n in sizes:
            chunks = make_stream(n)
            yardstick = json_loads_cost(chunks)
            cost, first = await per_chunk(policy, chunks, repeats)
            delay = await end_of_stream_delay(policy, min(n, 200), 3 if quick else 5)
            print(
                f"{type(policy).__name__:<12}{n:>8}{cost * 1e6:>10.2f}{yardstick * 1e6:>15.2f}"
                f"{cost / yardstick:>8.2f}{first * 1e3:>16.3f}{delay:>14.3f}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
