"""Instructions per chunk the pipeline adds, under callgrind: ``bench_pipeline.py``'s
measure counted in instructions, which carry from run to run where its times do not.

In one process under ``valgrind --tool=callgrind`` (counting switched on only around
what is measured, with ``callgrind_control``), for each policy: ``bench_pipeline.py``'s
text stream of ``--chunks`` chunks (litellm's chunk objects) consumed once through the
orchestrator and once directly, each after a warm-up; the pipeline's cost per chunk is
the difference over the chunks. The yardstick, counted the same way in the same
process, is ``json.loads`` of the same chunks' JSON. The collector stays on, as in
``bench_pipeline.py``. Needs ``valgrind`` (apt).

    .venv/bin/python benchmarks/callgrind_pipeline.py [--chunks 1300] [--policy NAME ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from callgrind_gateway import lacks

YARDSTICK = "json.loads"
DIRECT = " direct"  # a policy's label plus this: the same stream consumed directly


def _control(*options: str) -> None:
    command = ["callgrind_control", *options, str(os.getpid())]
    subprocess.run(command, check=True, capture_output=True)


class _Counting:
    """Counting on inside the block, then a dump named ``label``."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __enter__(self) -> None:
        _control("-i", "on")

    def __exit__(self, *exc: object) -> None:
        _control("-i", "off")
        _control("-d", self.label)


async def measure(policies: list[str], chunks: int, count: bool = True) -> dict[str, int]:
    """Consume each policy's stream through the orchestrator and directly, then parse
    the chunks' JSON, each counted (``count``) under its label; what each consumed."""
    import bench_pipeline as bench

    from luthien_lab import PolicyOrchestrator
    from luthien_lab.clients import ScriptedLLMClient

    stream = bench.make_stream(chunks)
    consumed: dict[str, int] = {}
    for name in policies:
        client = ScriptedLLMClient(stream)
        orchestrator = PolicyOrchestrator(bench.POLICIES[name][1](), client)
        runs = ((name, orchestrator.process_streaming_response), (name + DIRECT, client.stream))
        for label, consume in runs:
            [_ async for _ in consume(bench.REQUEST)]  # warm-up
            with _Counting(label) if count else nullcontext():
                consumed[label] = len([_ async for _ in consume(bench.REQUEST)])
    texts = [chunk.model_dump_json() for chunk in stream]
    [json.loads(text) for text in texts]
    with _Counting(YARDSTICK) if count else nullcontext():
        consumed[YARDSTICK] = len([json.loads(text) for text in texts])
    return consumed


def dumps(out: Path) -> dict[str, int]:
    """Instructions per dump label, from callgrind's dump files beside ``out``."""
    totals: dict[str, int] = {}
    for path in sorted(out.parent.glob(out.name + ".*")):
        label = total = None
        for line in path.read_text().splitlines():
            if line.startswith("desc: Trigger: dump "):
                label = line.removeprefix("desc: Trigger: dump ")
            elif line.startswith("totals:"):
                total = int(line.split()[1])
                break
        if label is not None and total is not None:
            totals[label] = total
    return totals


def per_chunk(totals: dict[str, int], policies: list[str], chunks: int) -> dict[str, float]:
    """Instructions per chunk: the yardstick's, and each policy's pipeline less direct."""
    result = {YARDSTICK: totals[YARDSTICK] / chunks}
    for name in policies:
        result[name] = (totals[name] - totals[name + DIRECT]) / chunks
    return result


def main() -> None:
    import bench_pipeline as bench

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=1300)
    parser.add_argument("--policy", action="append", choices=list(bench.POLICIES))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    policies = args.policy or ["noop", "replace", "replace-heavy"]
    if args.child:
        asyncio.run(measure(policies, args.chunks))
        return
    if args.chunks < 3:
        parser.error(f"--chunks must be at least 3 (a role, a delta, a finish), got {args.chunks}")
    if lacks("valgrind", "callgrind_control"):
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pipeline.out"
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        command += [f"--callgrind-out-file={out}", sys.executable, __file__, "--child"]
        command += ["--chunks", str(args.chunks)]
        for name in policies:
            command += ["--policy", name]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        subprocess.run(command, env=env, check=True, capture_output=True)
        costs = per_chunk(dumps(out), policies, args.chunks)
    yardstick = costs[YARDSTICK]
    print(f"{args.chunks}-chunk text stream, litellm's chunk objects")
    print(f"{'policy':24s} {'instructions/chunk':>18s} {'x json.loads':>13s}")
    print(f"{YARDSTICK + ' (yardstick)':24s} {yardstick:18,.0f} {1:13.2f}")
    for name in policies:
        print(f"{name:24s} {costs[name]:18,.0f} {costs[name] / yardstick:13.2f}")


if __name__ == "__main__":
    main()
