"""How fast litellm streams from the local provider, per protocol.

    python benchmarks/bench_litellm_stream.py [--chunks 2000] [--reps 5]

Prints chunks per second and microseconds per chunk (median of the repetitions) for
``openai/...`` and ``anthropic/...`` through litellm's real HTTP + parsing path, and, as
a yardstick, the cost of ``json.loads`` on one chunk's JSON measured in the same run.
The provider runs in a background thread of the same process, so its own cost is
included (an upper bound on litellm's share).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import timeit

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


async def one_stream(litellm, provider, model: str, key: str) -> tuple[int, float]:
    kwargs = provider.litellm_kwargs(model)
    start = time.perf_counter()
    response = await litellm.acompletion(
        model=model,
        messages=[{"role": "user", "content": "bench"}],
        stream=True,
        num_retries=0,
        timeout=120,
        extra_headers={"x-luthien-script": key},
        **kwargs,
    )
    n = 0
    async for _ in response:
        n += 1
    return n, time.perf_counter() - start


async def main(chunks: int, reps: int) -> None:
    import litellm

    from luthien_lab.provider import ScriptedResponse, local_provider

    litellm.suppress_debug_info = True
    text = "".join(f"w{i:04d} " for i in range(chunks))
    with local_provider() as provider:
        key = provider.script(ScriptedResponse(text=text, chunk_size=6))
        from importlib.metadata import version

        print(f"litellm {version('litellm')}, {chunks} content chunks per response, {reps} reps")
        for model in ("openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"):
            await one_stream(litellm, provider, model, key)  # warm-up
            runs = [await one_stream(litellm, provider, model, key) for _ in range(reps)]
            n = runs[0][0]
            seconds = statistics.median(t for _, t in runs)
            print(
                f"{model:32s} {n / seconds:10,.0f} chunks/s  {seconds / n * 1e6:8.1f} us/chunk"
                f"  ({n} chunks in {seconds * 1000:.0f} ms)"
            )
    sample = json.dumps(
        {"id": "chatcmpl-local000001", "object": "chat.completion.chunk", "created": 1,
         "model": "gpt-4o-mini", "system_fingerprint": "fp_luthien_local",
         "choices": [{"index": 0, "delta": {"content": "w0001 "}, "logprobs": None,
                      "finish_reason": None}]}
    )  # fmt: skip
    number = 20000
    per = min(timeit.repeat(lambda: json.loads(sample), number=number, repeat=5)) / number
    print(
        f"{'yardstick: json.loads(one chunk)':32s} {1 / per:10,.0f} chunks/s"
        f"  {per * 1e6:8.1f} us/chunk"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.chunks, args.reps))
