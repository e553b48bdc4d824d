"""``luthien-lab demo``: one prompt through a policy, offline, with everything it did.

Streams the transformed response to the terminal as it arrives, then prints the
provider's raw text beside it, which hooks fired on how many chunks, and where the
transaction was recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from typing import Any

__all__ = ["configure", "run"]

DEFAULT_PROMPT = "Look up the weather in Berlin and tell me what to wear."


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", default=DEFAULT_PROMPT, help="the user message")
    parser.add_argument(
        "--policy",
        default="uppercase",
        help="uppercase, noop, a class path module:ClassName or a YAML config (default: uppercase)",
    )
    parser.add_argument("--model", default="openai/gpt-4o-mini", help="litellm model name")
    parser.add_argument("--no-stream", action="store_true", help="non-streaming request")
    parser.add_argument(
        "--store",
        default="default",
        help="DuckDB store path, or 'none' (default: the default store)",
    )


async def _demo(args: argparse.Namespace) -> int:
    from luthien_lab import CallbackListener, Request, create_default_orchestrator
    from luthien_lab.policies._loading import resolve_policy

    hooks: Counter[str] = Counter()
    result: dict[str, Any] = {}

    def watch(event: str, transaction_id: str, payload: dict[str, Any]) -> None:
        if event == "hook_fired":
            hooks[payload["hook"]] += 1
        elif event == "transaction_finished":
            result["tx"] = transaction_id
            result["result"] = payload["result"]

    store = None if args.store == "none" else args.store
    orchestrator = create_default_orchestrator(
        resolve_policy(args.policy), store=store, listeners=[CallbackListener(watch)]
    )
    request = Request(
        model=args.model,
        messages=[{"role": "user", "content": args.prompt}],
        stream=not args.no_stream,
    )
    print(f"policy: {type(orchestrator.policy).__name__}   model: {args.model}")
    print(f"prompt: {args.prompt}\n")
    print("transformed (as it streams):")
    if args.no_stream:
        response = await orchestrator.process_full_response(request)
        print(response.choices[0].message.content or "")
    else:
        from luthien_lab.streaming.fields import NO_CHOICES, read_chunk, read_delta

        async for chunk in orchestrator.process_streaming_response(request):
            _usage, delta, _finish = read_chunk(chunk)
            text = read_delta(delta)[1] if delta is not None and delta is not NO_CHOICES else None
            if text:
                print(text, end="", flush=True)
        print()
    finished = result["result"]
    raw = finished.original_response
    final = finished.final_response
    print("\nraw from the provider:")
    print((raw.choices[0].message.content if raw else "") or "")
    for label, response in (("raw", raw), ("final", final)):
        calls = (response.choices[0].message.tool_calls or []) if response else []
        for call in calls:
            print(f"{label} tool call: {call.function.name}({call.function.arguments})")
    print(
        f"\nstatus: {finished.status}   chunks in: {finished.ingress_chunk_count}"
        f"   out: {finished.egress_chunk_count}"
    )
    print("hooks fired: " + (", ".join(f"{h} x{n}" for h, n in sorted(hooks.items())) or "none"))
    from luthien_lab.store import DuckDBRecorder

    recorder = next(
        (lst for lst in orchestrator.listeners if isinstance(lst, DuckDBRecorder)), None
    )
    if recorder is not None:
        # Closing here, not at interpreter exit, ends the demo with its write finished.
        recorder.close()
        store = recorder.store
        if recorder.parked:
            print(
                f"kept transaction {result['tx']} in {store.dead_letters.path}: {store.path} "
                "is busy; it is written when the store is next opened"
            )
        else:
            print(f"recorded transaction {result['tx']} to {store.path}")
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_demo(args))
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # a demo prints the failure plainly
        print(f"demo failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
