"""Start-up: what a user waits for in a fresh process, beside ``import litellm``.

Run: ``python benchmarks/bench_startup.py`` (``--rounds N``, ``--quick`` for 2 rounds).

Every figure is the median wall time of fresh processes, the rows interleaved round
by round so that a busy machine slows them alike, and shown as a ratio to the
yardstick measured in the same run: ``python -c "import litellm"`` (with
``LITELLM_LOCAL_MODEL_COST_MAP=True``, so it is litellm's import alone, no network).

- ``luthien-lab demo``: a prompt through ``UppercasePolicy`` to the bundled local
  provider and back, recorded to a new store file (``--store none``: not recorded).
  Target: at most 1.15 x the yardstick.
- first ``lab.run``: a fresh interpreter imports ``luthien_lab.lab`` and runs a prompt
  (recorded to a new store); shown are litellm's import inside that run and the time
  from the end of that import to the run's first chunk (target < 0.5 s).
- CLI and imports that never import litellm: ``luthien-lab --help``, ``import
  luthien_lab``, ``from luthien_lab import lab``, ``import luthien_lab.widgets``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROMPT = "Look up the weather in Berlin and tell me what to wear."

# Run inside a fresh interpreter: the time litellm's import ends (whoever imports it)
# and the first egress chunk of the first lab.run.
_FIRST_RUN = r"""
import importlib.abc, importlib.machinery, json, sys, time
marks = {}

class _Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "litellm":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module
        def exec_module(module):
            marks["litellm_start"] = time.perf_counter_ns()
            run(module)
            marks["litellm_end"] = time.perf_counter_ns()
        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, _Watch())
start = time.perf_counter_ns()
from luthien_lab import UppercasePolicy, lab
imported = time.perf_counter_ns()
result = lab.run(PROMPT, policy=UppercasePolicy, store=STORE)
done = time.perf_counter_ns()
trace = result.trace_data
first = trace.start_ns + trace.first_egress_offset_ns
print(json.dumps({
    "status": result.status,
    "import_lab": (imported - start) / 1e9,
    "litellm_import": (marks["litellm_end"] - marks["litellm_start"]) / 1e9,
    "after_litellm_to_first_chunk": (first - marks["litellm_end"]) / 1e9,
    "run_to_first_chunk": (first - imported) / 1e9,
    "process_to_first_chunk": (first - start) / 1e9,
    "run": (done - imported) / 1e9,
}))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("LITELLM_LOCAL_MODEL_COST_MAP", None)  # luthien-lab must set it itself
    env["LUTHIEN_LAB_PROVIDER"] = "local"
    env.pop("LUTHIEN_LAB_STORE", None)
    return env


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 rounds")
    args = parser.parse_args()
    rounds = 2 if args.quick else args.rounds
    python = sys.executable
    cli = str(BIN / "luthien-lab")
    env = _env()
    yard_env = {**env, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    times: dict[str, list[float]] = {}
    first_runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for n in range(rounds):
            rows = {
                'python -c "import litellm"': ([python, "-c", "import litellm"], yard_env),
                "luthien-lab demo": ([cli, "demo", "--store", str(work / f"demo{n}.duckdb")], env),
                "luthien-lab demo --store none": ([cli, "demo", "--store", "none"], env),
                "luthien-lab --help": ([cli, "--help"], env),
                "import luthien_lab": ([python, "-c", "import luthien_lab"], env),
                "from luthien_lab import lab": ([python, "-c", "from luthien_lab import lab"], env),
                "import luthien_lab.widgets": ([python, "-c", "import luthien_lab.widgets"], env),
                "python -c pass": ([python, "-c", "pass"], env),
            }
            for name, (cmd, row_env) in rows.items():
                times.setdefault(name, []).append(timed(cmd, row_env, work)[0])
            script = _FIRST_RUN.replace("PROMPT", repr(PROMPT)).replace(
                "STORE", repr(str(work / f"lab{n}.duckdb"))
            )
            elapsed, out = timed([python, "-c", script], env, work)
            run = json.loads(out.strip().splitlines()[-1])
            run["process"] = elapsed
            first_runs.append(run)
            print(f"round {n + 1}/{rounds} done", file=sys.stderr)
    yardstick = statistics.median(times['python -c "import litellm"'])
    print(f"python {sys.version.split()[0]}, {rounds} rounds, medians of fresh processes\n")
    print(f"{'what':<36}{'seconds':>9}{'x import litellm':>18}")
    for name, values in times.items():
        value = statistics.median(values)
        print(f"{name:<36}{value:>9.3f}{value / yardstick:>18.2f}")
    print("\nfirst lab.run in a fresh interpreter (recorded to a new store)")
    for key in (
        "import_lab",
        "litellm_import",
        "after_litellm_to_first_chunk",
        "run_to_first_chunk",
        "process_to_first_chunk",
        "run",
        "process",
    ):
        value = statistics.median(run[key] for run in first_runs)
        print(f"  {key:<34}{value:>9.3f}")
    statuses = {run["status"] for run in first_runs}
    if statuses != {"ok"}:
        print(f"  (run statuses: {sorted(statuses)})")


if __name__ == "__main__":
    main()
