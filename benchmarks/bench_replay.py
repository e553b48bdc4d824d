"""Replay throughput of ``evaluate`` on one process, as a user calls it.

Run: ``python benchmarks/bench_replay.py`` (``--cases N``, ``--chunks K``,
``--repeat R``, ``--profile`` to print a cProfile of one passthrough run).

Cases: N cases of K chunks each (default 300 x 42: a role chunk, K-3 text chunks
cut from the bundled long OpenAI recording, the finish chunk, the usage trailer).
Each policy (passthrough, StringReplacePolicy) is evaluated with
``evaluate({name: policy}, cases)`` and its defaults: ``baseline="auto"``, progress
bar on, concurrency 8. Twice over:

- *dataset*: the cases as a list of recordings (a passthrough baseline runs for
  each case: two runs per case);
- *store*: the same chunks recorded to a DuckDB store first, then
  ``evaluate(..., store.cases())``: read from the store in batches, compared with
  what production sent (no baseline run for stored cases: one run per case).

Figures: chunks/s (chunks of the dataset, not runs), wall and CPU, and the CPU cost
per chunk as a ratio to the CPU time of ``json.loads`` of the same chunks' JSON
text, measured in the same run (CPU time, because the machine is shared: wall time
also counts other processes; each figure is the best of ``--repeat`` runs).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from luthien_lab import NoOpPolicy
from luthien_lab.datasets import load_recordings
from luthien_lab.evaluate import evaluate
from luthien_lab.evaluate._cases import Case, to_cases
from luthien_lab.policies import StringReplacePolicy


def dataset(n: int, k: int) -> list[Case]:
    (long,) = [c for c in to_cases(load_recordings()) if c.id.startswith("text-long@openai")]
    chunks = long.chunks or []
    body = chunks[1:-2]
    out = []
    for i in range(n):
        start = i % (len(body) - (k - 3))
        picked = [chunks[0], *body[start : start + k - 3], *chunks[-2:]]
        out.append(Case(id=f"case-{i}", request=long.request, chunks=picked))
    return out


def policies() -> dict[str, Any]:
    return {
        "passthrough": NoOpPolicy(),
        "string-replace": StringReplacePolicy(
            replacements={"OpenAI": "[REDACTED]", "lighthouse": "beacon"}
        ),
    }


def json_loads_seconds(cases: list[Case], repeat: int) -> float:
    """CPU seconds of ``json.loads`` of every chunk's JSON text, best of ``repeat``."""
    texts = [json.dumps(chunk) for case in cases for chunk in case.chunks or ()]
    best = float("inf")
    for _ in range(max(repeat, 3)):
        start = time.process_time()
        for text in texts:
            json.loads(text)
        best = min(best, time.process_time() - start)
    return best


def record(cases: list[Case], path: Path) -> None:
    """The cases as production transactions (passthrough) in a store."""
    evaluate(NoOpPolicy(), cases, store=path, baseline=None, progress=False)


def timed(policy: Any, dataset: Any, repeat: int) -> tuple[float, float, Any]:
    """(best wall seconds, best CPU seconds, result) of ``repeat`` evaluations."""
    wall = cpu = float("inf")
    result = None
    for _ in range(repeat):
        # The progress bar is on, as by default; it writes to stderr, kept off the table.
        with contextlib.redirect_stderr(io.StringIO()):
            start, start_cpu = time.perf_counter(), time.process_time()
            result = evaluate({"candidate": policy}, dataset)
            cpu = min(cpu, time.process_time() - start_cpu)
            wall = min(wall, time.perf_counter() - start)
    return wall, cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--chunks", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    cases = dataset(args.cases, args.chunks)
    n_chunks = sum(len(c.chunks or ()) for c in cases)
    evaluate(NoOpPolicy(), cases[:20], progress=False)  # warm imports and caches
    from luthien_lab.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        record(cases, path)
        store = Store(path, read_only=True)
        start = time.process_time()
        read = sum(len(c.chunks or ()) for c in store.cases())
        read_s = time.process_time() - start
        assert read == n_chunks
        loads = json_loads_seconds(cases, args.repeat)
        per_chunk = loads / n_chunks
        print(
            f"{args.cases} cases x {args.chunks} chunks = {n_chunks} chunks, one process; "
            f"json.loads: {per_chunk * 1e6:.2f} us/chunk ({1 / per_chunk:,.0f} chunks/s)\n"
            f"reading the store's cases alone: {read_s / loads:.1f} json.loads/chunk\n"
        )
        print(
            f"{'cases':<9}{'policy':<16}{'wall s':>8}{'chunks/s':>10}{'CPU s':>8}"
            f"{'CPU chunks/s':>14}{'json.loads/chunk':>18}"
        )
        for source in ("dataset", "store"):
            for name, policy in policies().items():
                data = cases if source == "dataset" else store.cases()
                wall, cpu, result = timed(policy, data, args.repeat)
                assert len(result) == args.cases and result.df["error"].isna().all()
                print(
                    f"{source:<9}{name:<16}{wall:>8.2f}{n_chunks / wall:>10,.0f}{cpu:>8.2f}"
                    f"{n_chunks / cpu:>14,.0f}{cpu / loads:>18.1f}"
                )
        if args.profile:
            profile = cProfile.Profile()
            with contextlib.redirect_stderr(io.StringIO()):
                profile.runcall(evaluate, {"candidate": NoOpPolicy()}, cases)
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(20)
            print(out.getvalue())


if __name__ == "__main__":
    main()
