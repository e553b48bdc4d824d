"""Replay throughput of ``evaluate`` on one process: cases/s and chunks/s.

Run: ``python benchmarks/bench_replay.py`` (``--cases N``, ``--quick`` for 200 cases).

The dataset is the bundled recordings (text, long text, multi-byte, tool calls,
thinking, refusal; OpenAI and Anthropic protocols) cycled to N cases with unique
ids. Every case is replayed at once (``pacing="fast"``) through each policy with
no baseline and no progress bar, at concurrency 1 and 8. Each figure is the best
of ``--repeat`` runs (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from luthien_lab import NoOpPolicy
from luthien_lab.datasets import load_recordings
from luthien_lab.evaluate import evaluate
from luthien_lab.evaluate._cases import Case, to_cases


def dataset(n: int) -> list[Case]:
    base = to_cases(load_recordings())
    return [
        Case(
            id=f"{base[i % len(base)].id}#{i}",
            request=base[i % len(base)].request,
            chunks=base[i % len(base)].chunks,
        )
        for i in range(n)
    ]


def policies() -> dict[str, object]:
    try:
        from luthien_lab.policies import StringReplacePolicy

        replace: object = StringReplacePolicy(
            replacements={"OpenAI": "[REDACTED]", "lighthouse": "beacon"}
        )
    except ImportError:  # the built-in is optional for this benchmark
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from evaluate.helpers import ReplaceWhole

        replace = ReplaceWhole()
    return {"passthrough": NoOpPolicy(), "string-replace": replace}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 200 if args.quick else args.cases
    cases = dataset(n)
    chunks = sum(len(c.chunks or []) for c in cases)
    evaluate(NoOpPolicy(), cases[:25], progress=False, baseline=None)  # warm imports
    print(f"{n} cases, {chunks} chunks ({chunks / n:.1f} per case), one process\n")
    print(f"{'policy':<16}{'concurrency':>12}{'seconds':>10}{'cases/s':>10}{'chunks/s':>11}")
    for name, policy in policies().items():
        for concurrency in (1, 8):
            best = float("inf")
            for _ in range(args.repeat):
                start = time.perf_counter()
                result = evaluate(
                    policy, cases, progress=False, baseline=None, concurrency=concurrency
                )
                best = min(best, time.perf_counter() - start)
            assert len(result) == n and result.df["error"].isna().all()
            print(
                f"{name:<16}{concurrency:>12}{best:>10.2f}{n / best:>10.0f}{chunks / best:>11.0f}"
            )


if __name__ == "__main__":
    main()
