"""Pipeline overhead per chunk, time to first chunk and end-of-stream delay, for
every built-in policy.

Run: ``python benchmarks/bench_pipeline.py`` (``--quick`` for a fast smoke run,
``--markdown`` for the README table, ``--policy NAME`` to run some rows only).

Per-chunk cost = (CPU time to consume the stream through the orchestrator - CPU
time to consume the same upstream directly) / chunks, reported in microseconds and
as a ratio to ``json.loads`` of the same chunks' JSON measured in the same run (the
yardstick: the least a gateway does with a chunk is parse it). CPU time of this
thread, not wall time, so that other processes on a shared machine do not count.
``callgrind_pipeline.py`` counts the same per-chunk cost in instructions, which carry
from run to run where times do not.
Text-only streams: a role chunk, word deltas, a finish chunk.

First chunk: from the call to the first egress chunk, with an instant upstream.
End-of-stream delay: from the upstream handing over its last chunk (1 ms pacing) to
the consumer's iterator finishing; measured on a 200-chunk text stream and on the
four streams recorded from real providers (``tests/fixtures/recorded-chunks``).

The text repeats 13 words ("the quick brown fox jumps over the lazy dog and keeps on
running"): ``StringReplacePolicy`` rewrites the chunk " fox" (``replace``), and in
``replace-heavy`` also holds back " lazy" until " dog" shows whether "lazy dog" follows;
a rewritten chunk is a new chunk object, the rest go out as they came.

``ToolCallJudgePolicy`` runs with a stub judge: on text-only streams it is never
asked, and its model call is a network round trip anyway, outside the pipeline's
own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from luthien_lab import NoOpPolicy, PolicyOrchestrator, Request, SimplePolicy, UppercasePolicy
from luthien_lab.clients import ScriptedLLMClient
from luthien_lab.policies import (
    RegexBlockPolicy,
    StringReplacePolicy,
    ToolCallJudgePolicy,
    ToolFilterPolicy,
)
from luthien_lab.streaming.chunks import create_chunk

ROOT = Path(__file__).resolve().parents[1]
REQUEST = Request(model="bench", messages=[{"role": "user", "content": "hi"}])
RECORDED = ROOT / "tests" / "fixtures" / "recorded-chunks"
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


async def _never_asked(messages: list) -> str:
    return '{"probability": 0, "explanation": "stub"}'


# name -> (README label, factory)
POLICIES: dict[str, tuple[str, Callable[[], object]]] = {
    "noop": ("passthrough (`NoOpPolicy`)", NoOpPolicy),
    "simple": ("`SimplePolicy()`, no overrides", SimplePolicy),
    "uppercase": ("uppercase (`UppercasePolicy`)", UppercasePolicy),
    "replace": (
        "string replacement (`StringReplacePolicy`, 1 chunk in 13 rewritten)",
        lambda: StringReplacePolicy(replacements={"fox": "cat"}),
    ),
    "replace-heavy": (
        "string replacement, a search across chunks too (3 chunks in 13 rewritten)",
        lambda: StringReplacePolicy(replacements={"fox": "cat", "lazy dog": "sleepy hound"}),
    ),
    "regex": (
        "regex blocking (`RegexBlockPolicy`)",
        lambda: RegexBlockPolicy(patterns=[r"sk-[a-z0-9]{8,}", r"rm\s+-rf"]),
    ),
    "toolfilter": ("tool filter (`ToolFilterPolicy`)", lambda: ToolFilterPolicy(deny=["Bash"])),
    "judge": (
        "LLM judge (`ToolCallJudgePolicy`, model call aside)",
        lambda: ToolCallJudgePolicy(judge=_never_asked),
    ),
}


def make_stream(n: int) -> list:
    """A realistic text stream: role chunk, n-2 word deltas, finish chunk."""
    header = create_chunk(None, role="assistant", content="")
    chunks = [header]
    for i in range(n - 2):
        chunks.append(create_chunk(header, content=" " + WORDS[i % len(WORDS)]))
    chunks.append(create_chunk(header, finish_reason="stop"))
    return chunks


def recorded_streams() -> dict[str, list]:
    from luthien_lab.clients._scripted import to_chunk

    return {
        path.stem.removesuffix("_chunks"): [to_chunk(c) for c in json.loads(path.read_text())]
        for path in sorted(RECORDED.glob("*.json"))
    }


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


cpu = time.thread_time


async def consume_direct(client) -> float:
    start = cpu()
    async for _ in client.stream(REQUEST):
        pass
    return cpu() - start


async def consume_pipeline(orchestrator) -> tuple[float, float]:
    """(CPU seconds to consume the stream, wall seconds to its first chunk)."""
    start, wall = cpu(), time.perf_counter()
    first = None
    async for _ in orchestrator.process_streaming_response(REQUEST):
        if first is None:
            first = time.perf_counter() - wall
    return cpu() - start, first or 0.0


def json_loads_cost(texts: list[str]) -> float:
    """CPU seconds of ``json.loads`` per chunk JSON text (best of 3 passes)."""
    best = float("inf")
    for _ in range(3):
        start = cpu()
        for text in texts:
            json.loads(text)
        best = min(best, cpu() - start)
    return best / len(texts)


async def per_chunk(policy, chunks, repeats: int) -> tuple[float, float, float]:
    """(CPU seconds per chunk added by the pipeline, its ratio to ``json.loads`` of the
    same chunks' JSON, wall seconds to the first chunk): medians over ``repeats``
    measurements, each over at least 10,000 chunks (a short stream is consumed several
    times) with the yardstick measured right beside it, so that a busy machine slows
    both alike."""
    client = ScriptedLLMClient(chunks)
    orchestrator = PolicyOrchestrator(policy, client)
    loops = max(1, 10_000 // len(chunks))
    texts = [c.model_dump_json() for c in chunks] * loops
    costs, ratios, firsts = [], [], []
    await consume_pipeline(orchestrator)  # warm up
    for _ in range(repeats):
        gc.collect()
        direct = total = 0.0
        for _ in range(loops):
            direct += await consume_direct(client)
            spent, first = await consume_pipeline(orchestrator)
            total += spent
            firsts.append(first)
        cost = (total - direct) / (len(chunks) * loops)
        costs.append(cost)
        ratios.append(cost / json_loads_cost(texts))
    return statistics.median(costs), statistics.median(ratios), statistics.median(firsts)


async def end_of_stream_delay(policy, chunks: list, repeats: int) -> float:
    delays = []
    for _ in range(repeats):
        client = PacedClient(chunks, pace=0.001)
        orchestrator = PolicyOrchestrator(policy, client)
        async for _ in orchestrator.process_streaming_response(REQUEST):
            pass
        delays.append(time.perf_counter_ns() - client.last_yield_ns)
    return statistics.median(delays) / 1e6


async def main(args: argparse.Namespace) -> None:
    sizes = (100, 1000) if args.quick else (100, 1000, 10000)
    repeats = 3 if args.quick else 7
    names = args.policy or list(POLICIES)
    recorded = recorded_streams()
    print(f"python {sys.version.split()[0]}, {repeats} repeats, medians")
    header = (
        f"{'policy':<14}{'chunks':>8}{'us/chunk':>10}{'json.loads us':>15}{'ratio':>8}"
        f"{'first chunk ms':>16}{'end delay ms':>14}"
    )
    print(header)
    rows: list[tuple[str, int, float, float, float, float]] = []
    delays: dict[str, dict[str, float]] = {}
    for name in names:
        label, factory = POLICIES[name]
        policy = factory()
        for n in sizes:
            chunks = make_stream(n)
            cost, ratio, first = await per_chunk(policy, chunks, repeats)
            delay = await end_of_stream_delay(policy, make_stream(200), 3 if args.quick else 5)
            rows.append((label, n, cost, ratio, first, delay))
            print(
                f"{name:<14}{n:>8}{cost * 1e6:>10.2f}{cost / ratio * 1e6:>15.2f}"
                f"{ratio:>8.2f}{first * 1e3:>16.3f}{delay:>14.3f}"
            )
        delays[name] = {
            stream: await end_of_stream_delay(policy, chunks, 3 if args.quick else 5)
            for stream, chunks in recorded.items()
        }
    if recorded:
        print("\nend-of-stream delay on the recorded streams, 1 ms pacing (ms)")
        streams = list(recorded)
        print(f"{'policy':<14}" + "".join(f"{s[:26]:>28}" for s in streams))
        for name in names:
            print(f"{name:<14}" + "".join(f"{delays[name][s]:>28.3f}" for s in streams))
    if args.markdown:
        print("\n| policy | chunks | µs/chunk | × json.loads | first chunk | end-of-stream delay |")
        print("|---|---|---|---|---|---|")
        for label, n, cost, ratio, first, delay in rows:
            print(
                f"| {label} | {n:,} | {cost * 1e6:.2f} | {ratio:.2f} | {first * 1e3:.2f} ms "
                f"| {delay:.2f} ms |"
            )
        if recorded:
            worst = {name: max(delays[name].values()) for name in names}
            print(
                "\nworst end-of-stream delay over the recorded streams: "
                + ", ".join(f"{POLICIES[n][0]} {worst[n]:.2f} ms" for n in names)
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--markdown", action="store_true", help="print the README table too")
    parser.add_argument("--policy", action="append", choices=list(POLICIES))
    asyncio.run(main(parser.parse_args()))
