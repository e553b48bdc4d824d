"""Cost per chunk of the coding-agent policies, and of a chain against its stages.

Run: ``python benchmarks/bench_agent_policies.py`` (``--quick`` for a smoke run,
``--markdown`` for the README tables).

Per-chunk cost = (CPU time to consume the stream through the orchestrator - CPU time
to consume the same upstream directly) / chunks, in microseconds and as a ratio to
``json.loads`` of the same chunks' JSON measured in the same run (as
``bench_pipeline.py``). Two streams:

- text-only: a role chunk, 1,000 word deltas, a finish chunk;
- tool-call-heavy: 40 Claude Code tool calls (``Bash`` commands with ``&&``, pipes and
  ``$(...)``, ``Write``/``Read`` paths, ``WebFetch`` URLs, ``pip install``), each
  call's arguments split every 8 characters, as a model streams them: ~700 chunks.

The plain-English judge runs with every answer already in its cache (what a replay
or an evaluation sees; a model call is a network round trip outside the pipeline).
The chain row is ``SerialPolicy([shell, paths, rewrite])``; "stages alone" is the sum
of those three policies' own costs, each run by itself.
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
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from luthien_lab import NoOpPolicy, PolicyOrchestrator, Request, SerialPolicy  # noqa: E402 (after the path and env set-up)
from luthien_lab.clients import ScriptedLLMClient  # noqa: E402 (after the path and env set-up)
from luthien_lab.policies import (  # noqa: E402
    NetworkRulesPolicy,
    PathRulesPolicy,
    PlainRulesPolicy,
    RewriteRulesPolicy,
    ShellRulesPolicy,
)
from luthien_lab.streaming.chunks import create_chunk, tool_call_delta  # noqa: E402 (after the path and env set-up)

REQUEST = Request(
    model="bench",
    messages=[
        {"role": "system", "content": "# Environment\n - Primary working directory: /work/app"},
        {"role": "user", "content": "fix the build"},
    ],
)
UV = [
    {
        "name": "uv",
        "command": "pip",
        "prefix": ["install"],
        "replace_with": ["uv", "pip", "install"],
    }
]
CALLS = [
    ("Bash", {"command": "cd /work/app && git status --short | head -20", "description": "Status"}),
    ("Bash", {"command": "pytest -q tests/ 2>&1 | tail -5 && echo $(date)", "description": "Test"}),
    ("Write", {"file_path": "/work/app/src/module.py", "content": "def f():\n    return 1\n" * 4}),
    ("Read", {"file_path": "/work/app/README.md"}),
    ("WebFetch", {"url": "https://docs.python.org/3/library/shlex.html", "prompt": "summarize"}),
    ("Bash", {"command": "pip install -r requirements.txt && python -m build", "description": "Build"}),
    ("Bash", {"command": "find . -name '*.pyc' -delete; rm -rf build dist", "description": "Clean"}),
    ("Bash", {"command": "bash -c 'for f in src/*.py; do python -m py_compile $f; done'", "description": "Compile"}),
]  # fmt: skip


async def _cached_allow(messages: list) -> str:
    return '{"decision": "allow", "reason": "fine"}'


def _plain() -> PlainRulesPolicy:
    policy = PlainRulesPolicy(instructions="Never deploy to production.")
    policy.ask = _cached_allow  # type: ignore[method-assign]  # filled once, then cached
    return policy


POLICIES: dict[str, tuple[str, Callable[[], object]]] = {
    "noop": ("passthrough (`NoOpPolicy`), for scale", NoOpPolicy),
    "shell": ("`ShellRulesPolicy` (default rules)", ShellRulesPolicy),
    "paths": ("`PathRulesPolicy` (defaults + allow_write)", lambda: PathRulesPolicy(allow_write=["{cwd}/**", "/tmp/**"])),
    "network": ("`NetworkRulesPolicy` (allow_hosts)", lambda: NetworkRulesPolicy(allow_hosts=["github.com", "pypi.org", "docs.python.org"])),
    "rewrite": ("`RewriteRulesPolicy` (pip -> uv pip)", lambda: RewriteRulesPolicy(rules=UV)),
    "plain": ("`PlainRulesPolicy` (answers cached)", _plain),
    "chain": ("`SerialPolicy([shell, paths, rewrite])`", lambda: SerialPolicy([ShellRulesPolicy(), PathRulesPolicy(allow_write=["{cwd}/**", "/tmp/**"]), RewriteRulesPolicy(rules=UV)])),
}  # fmt: skip
CHAIN_STAGES = ("shell", "paths", "rewrite")


def text_stream(n: int) -> list:
    header = create_chunk(None, role="assistant", content="")
    words = ["the", "build", "fails", "because", "a", "module", "is", "missing", "so", "I"]
    body = [create_chunk(header, content=" " + words[i % len(words)]) for i in range(n)]
    return [header, *body, create_chunk(header, finish_reason="stop")]


def tool_stream(calls: int, split: int = 8) -> list:
    header = create_chunk(None, role="assistant", content="")
    chunks = [header, create_chunk(header, content="Let me work on it.")]
    for index in range(calls):
        name, args = CALLS[index % len(CALLS)]
        text = json.dumps(args)
        chunks.append(
            create_chunk(header, tool_calls=[tool_call_delta(index, id=f"call_{index}", name=name)])
        )
        for start in range(0, len(text), split):
            piece = tool_call_delta(index, arguments=text[start : start + split])
            chunks.append(create_chunk(header, tool_calls=[piece]))
    chunks.append(create_chunk(header, finish_reason="tool_calls"))
    return chunks


cpu = time.thread_time


async def consume(orchestrator: PolicyOrchestrator | None, client: ScriptedLLMClient) -> float:
    start = cpu()
    if orchestrator is None:
        async for _ in client.stream(REQUEST):
            pass
    else:
        async for _ in orchestrator.process_streaming_response(REQUEST):
            pass
    return cpu() - start


def json_loads_cost(chunks: list) -> float:
    texts = [c.model_dump_json() for c in chunks]
    runs = []
    for _ in range(7):
        start = cpu()
        for text in texts:
            json.loads(text)
        runs.append(cpu() - start)
    return statistics.median(runs) / len(texts)


async def per_chunk(policy: object, chunks: list, repeats: int) -> float:
    client = ScriptedLLMClient(chunks)
    orchestrator = PolicyOrchestrator(policy, client)  # type: ignore[arg-type]
    await consume(orchestrator, client)  # warm up (and fill the judge's cache)
    costs = []
    for _ in range(repeats):
        gc.collect()
        direct = await consume(None, client)
        costs.append((await consume(orchestrator, client) - direct) / len(chunks))
    return statistics.median(costs)


async def main(args: argparse.Namespace) -> None:
    repeats = 3 if args.quick else 9
    streams = {
        "text-only": text_stream(200 if args.quick else 1000),
        "tool-call-heavy": tool_stream(10 if args.quick else 40),
    }
    yard = {name: json_loads_cost(chunks) for name, chunks in streams.items()}
    results: dict[tuple[str, str], float] = {}
    print(f"python {sys.version.split()[0]}, {repeats} repeats, medians (CPU time)")
    for stream, chunks in streams.items():
        print(f"\n{stream}: {len(chunks)} chunks, json.loads {yard[stream] * 1e6:.2f} us/chunk")
        for name, (_label, factory) in POLICIES.items():
            cost = await per_chunk(factory(), chunks, repeats)
            results[(name, stream)] = cost
            print(
                f"  {name:<8} {cost * 1e6:8.2f} us/chunk  {cost / yard[stream]:6.2f} x json.loads"
            )
        alone = sum(results[(s, stream)] for s in CHAIN_STAGES)
        chain = results[("chain", stream)]
        print(
            f"  chain vs its stages alone: {chain * 1e6:.2f} vs {alone * 1e6:.2f} us/chunk ({chain / alone:.2f} x)"
        )
    if args.markdown:
        print(
            "\n| policy | text-only µs/chunk | × json.loads | tool-call-heavy µs/chunk | × json.loads |"
        )
        print("|---|---|---|---|---|")
        for name, (label, _factory) in POLICIES.items():
            t, h = results[(name, "text-only")], results[(name, "tool-call-heavy")]
            print(
                f"| {label} | {t * 1e6:.2f} | {t / yard['text-only']:.2f} | {h * 1e6:.2f} | {h / yard['tool-call-heavy']:.2f} |"
            )
        for stream in streams:
            alone = sum(results[(s, stream)] for s in CHAIN_STAGES)
            chain = results[("chain", stream)]
            print(
                f"\n{stream}: chain {chain * 1e6:.2f} µs/chunk, its three stages alone {alone * 1e6:.2f} ({chain / alone:.2f} ×)"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    asyncio.run(main(parser.parse_args()))
