"""Instructions per upstream event of each piece of the gateway's per-event path, under
callgrind.

A streamed chat request at the gateway costs a fixed part and a part per upstream
event (about 42 k instructions each for a text delta, measured here; the bench's
streams have 11). This script takes the per-event part apart. In this process, on ``--events``
copies of one text event of the local provider's, it runs the gateway's own pieces in
stages, each stage the one before plus one piece:

- ``split``: ``sse_batches`` over the whole body in one read (splitting and parsing);
- ``chunk``: + the chunk of each event, lazy as the chat dialect's are, made per read
  as it makes them (``streaming.lazy.lazy_all``: each the event and its raw bytes);
- ``pipeline``: + the orchestrator's stream over those chunks (one transaction: the
  assembler, the policy's hooks, the egress queue); ``assembler`` is the assembler
  alone in its place, to tell the two apart;
- ``egress``: + the SSE body the gateway writes (``_encode_all``: the unchanged check,
  the raw bytes).

Each stage runs under ``valgrind --tool=callgrind`` with ``--events`` events and with
``--more`` times as many; the difference, per event, is the stage's cost, and a piece's
is its stage's cost less the stage before. The yardstick, measured the same way in the
same run, is pydantic-core's JSON parser on the event's data alone: the one piece a
gateway that reads events cannot skip. The collector is off in the measured process
(see ``child``). Needs ``valgrind`` (apt).

    .venv/bin/python benchmarks/callgrind_event.py [--events 500] [--more 6]
        [--policy passthrough|replace]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench_gateway_app as app_bench
from callgrind_gateway import callgrind_total, lacks

from luthien_lab.clients import ChunkBatches, LLMClient

STAGES = ("parse", "split", "chunk", "assembler", "pipeline", "egress")
# Each piece: (its stage, the stage it adds to).
PIECES = {
    "split and parse": ("split", None),
    "lazy chunk": ("chunk", "split"),
    "pipeline": ("pipeline", "chunk"),
    "  of it the assembler": ("assembler", "chunk"),
    "egress": ("egress", "pipeline"),
}
EVENT = app_bench.frame(content="Local ec")


def body(events: int) -> bytes:
    return EVENT * events + b"data: [DONE]\n\n"


class ReadyClient(LLMClient):
    """The upstream client of the ``pipeline`` stage: the chunks made so far, as one
    group (as one read of the provider's answer reaches the orchestrator)."""

    def __init__(self, chunks: list[Any]) -> None:
        self.chunks = chunks

    def stream(self, request: Any) -> Any:
        async def one() -> Any:
            yield self.chunks

        return ChunkBatches(one())

    async def complete(self, request: Any) -> Any:
        raise NotImplementedError("the pipeline stage streams")


async def run_stages(stage: str, events: int, policy: str) -> Any:
    """Run the stages up to ``stage`` on ``events`` events; what the last one made."""
    from pydantic_core import from_json

    from luthien_lab.gateway._native_http import sse_batches
    from luthien_lab.gateway._openai_chat import _encode_all
    from luthien_lab.gateway._wire import WireContext
    from luthien_lab.orchestrator import PolicyOrchestrator
    from luthien_lab.streaming.assembler import StreamingChunkAssembler
    from luthien_lab.streaming.lazy import lazy_all

    if stage == "parse":
        data = EVENT[6:-2]
        return [from_json(data) for _ in range(events)]
    stand_in = app_bench.StandIn([body(events)], one_read=True)
    parsed = [pair async for batch in sse_batches(stand_in, "local") for pair in batch]
    if stage == "split":
        return parsed
    chunks = lazy_all(parsed)
    if stage == "chunk":
        return chunks
    if stage == "assembler":
        assembler = StreamingChunkAssembler()
        return [assembler.feed(chunk) for chunk in chunks]
    orchestrator = PolicyOrchestrator(app_bench.make_policy(policy), ReadyClient(chunks))
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    batches = [b async for b in orchestrator.process_streaming_batches(request | {"stream": True})]
    if stage == "pipeline":
        return batches
    wire = WireContext("chat", {}, {}, None, extra={"client_usage": False})
    return b"".join(_encode_all(batch, wire) for batch in batches)


def child(stage: str, events: int, policy: str) -> None:
    """One stage in this process (internal: what runs under valgrind). The collector is
    off: what a collection costs depends on everything else alive (here, thousands of
    events at once), not on the piece."""
    gc.disable()

    async def measured() -> None:
        # What the stage made is dropped here: asyncio writes a task's result out in
        # its repr, and a stage's (thousands of events) would cost more than the stage.
        await run_stages(stage, events, policy)

    asyncio.run(measured())


def instructions(stage: str, events: int, policy: str, tmp: Path) -> int:
    """The instructions of a whole process that runs ``stage`` on ``events`` events."""
    out = tmp / f"{stage}-{events}.out"
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    command += [sys.executable, __file__, "--child", stage, str(events), policy]
    subprocess.run(command, env=env, check=True, capture_output=True)
    return callgrind_total(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--more", type=int, default=6, help="the second run's multiple")
    parser.add_argument("--policy", choices=["passthrough", "replace"], default="passthrough")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.child[2])
        return
    if args.events < 1 or args.more < 2:
        parser.error(f"--events must be at least 1 and --more 2, got {args.events}, {args.more}")
    if lacks("valgrind"):
        return
    extra = args.events * (args.more - 1)
    cost: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for stage in STAGES:
            few = instructions(stage, args.events, args.policy, Path(tmp))
            many = instructions(stage, args.events * args.more, args.policy, Path(tmp))
            cost[stage] = (many - few) / extra
    parse = cost["parse"]
    print(f"policy {args.policy}, {args.events} and {args.events * args.more} events")
    print(f"{'piece':24s} {'instructions/event':>18s} {'x the parse':>12s}")
    print(f"{'the parse (yardstick)':24s} {parse:18,.0f} {1:12.2f}")
    for piece, (stage, before) in PIECES.items():
        value = cost[stage] - (cost[before] if before else 0.0)
        print(f"{piece:24s} {value:18,.0f} {value / parse:12.2f}")
    total = cost["egress"]
    print(f"{'per event, all of it':24s} {total:18,.0f} {total / parse:12.2f}")


if __name__ == "__main__":
    main()
