"""Evaluating a candidate over a large store: wall time, cases/s, peak memory.

Run: ``python benchmarks/bench_store_eval.py`` (default 100,000 transactions;
``--transactions N`` for a quick run, ``--keep PATH`` to keep the store file).

1. Generates a store of N gateway-like transactions with the store's own table
   writer (``Store.write_tables``: Arrow tables, one bulk insert per table per
   batch of 5,000): streaming chat/messages/responses transactions over 7 days,
   three models, 6 to 60 ingress chunks each (mean about 24: text deltas, some
   tool calls, a finish chunk and a usage trailer), a passthrough production
   policy (egress = ingress, as the recorder stores it).
2. Evaluates ``StringReplacePolicy`` over ``store.cases()`` with ``evaluate()``'s
   defaults (progress bar off: it would flood a log), once over the first 10% of the
   transactions (``limit``) and once over all of them, each in a fresh subprocess
   that reports its peak RSS (``ru_maxrss``) and its RSS before evaluating. Memory
   stays bounded when the peak grows far less than the transaction count: the cases
   stream in batches of 500; what grows is the result table (one row per case).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODELS = ("openai/gpt-4o", "anthropic/claude-sonnet-4", "openai/gpt-4o-mini")
APIS = ("chat", "messages", "responses")
WORDS = [
    "the",
    "lighthouse",
    "keeper",
    "wrote",
    "that",
    "OpenAI",
    "models",
    "answer",
    "in",
    "small",
    "pieces",
]
POLICY = "luthien_lab.policies.passthrough.NoOpPolicy"
BATCH = 5000


def _chunk_columns(n_tx: int, first: int, rng: random.Random) -> tuple[dict[str, list[Any]], ...]:
    """Columns of ``transactions``, ``payloads`` and ``chunk_rows`` for a batch."""
    t: dict[str, list[Any]] = {
        k: []
        for k in [
            "transaction_id",
            "started_at",
            "ended_at",
            "duration_ms",
            "model",
            "provider",
            "policy_class",
            "streaming",
            "status",
            "ingress_chunk_count",
            "egress_chunk_count",
            "original_finish_reason",
            "final_finish_reason",
            "api",
            "tags",
        ]
    }
    p: dict[str, list[Any]] = {
        k: [] for k in ("transaction_id", "final_request", "original_response", "final_response")
    }
    c: dict[str, list[Any]] = {
        k: []
        for k in [
            "transaction_id",
            "direction",
            "chunk_index",
            "offset_ns",
            "response_id",
            "model",
            "created",
            "role",
            "content",
            "tool_calls",
            "finish_reason",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "egress_index",
            "egress_offset_ns",
        ]
    }
    start = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    for k in range(first, first + n_tx):
        tid = f"tx{k:08d}"
        model = MODELS[k % len(MODELS)]
        n_text = rng.randint(3, 57)
        tool = k % 7 == 0
        pieces = [rng.choice(WORDS) + " " for _ in range(n_text)]
        started = start + dt.timedelta(seconds=k * 604800 / 100_000 + rng.random())
        rows: list[tuple[Any, ...]] = [("assistant", "", None, None)]
        rows += [(None, piece, None, None) for piece in pieces]
        if tool:
            call = [{"index": 0, "id": f"call_{k}", "name": "get_weather", "arguments": "{}"}]
            rows.append((None, None, call, None))
        finish = "tool_calls" if tool else "stop"
        rows.append((None, None, None, finish))
        for i, (role, content, calls, fin) in enumerate(rows):
            c["transaction_id"].append(tid)
            c["direction"].append("ingress")
            c["chunk_index"].append(i)
            c["offset_ns"].append(1_000_000 * (i + 1))
            c["response_id"].append(f"chatcmpl-{k}")
            c["model"].append(model)
            c["created"].append(1_700_000_000)
            c["role"].append(role)
            c["content"].append(content)
            c["tool_calls"].append(calls)
            c["finish_reason"].append(fin)
            c["prompt_tokens"].append(None)
            c["completion_tokens"].append(None)
            c["total_tokens"].append(None)
            c["egress_index"].append(i)
            c["egress_offset_ns"].append(1_000_000 * (i + 1) + 50_000)
        text = "".join(pieces)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if tool:
            message["tool_calls"] = [
                {
                    "id": f"call_{k}",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ]
        response = json.dumps(
            {"id": f"chatcmpl-{k}", "choices": [{"index": 0, "message": message,
                                                  "finish_reason": finish}]}
        )  # fmt: skip
        p["transaction_id"].append(tid)
        p["final_request"].append(
            json.dumps({"model": model, "messages": [{"role": "user", "content": f"q{k}"}]})
        )
        p["original_response"].append(response)
        p["final_response"].append(response)
        t["transaction_id"].append(tid)
        t["started_at"].append(started)
        t["ended_at"].append(started + dt.timedelta(milliseconds=len(rows)))
        t["duration_ms"].append(float(len(rows)))
        t["model"].append(model)
        t["provider"].append("openai-http")
        t["policy_class"].append(POLICY)
        t["streaming"].append(True)
        t["status"].append("ok")
        t["ingress_chunk_count"].append(len(rows))
        t["egress_chunk_count"].append(len(rows))
        t["original_finish_reason"].append(finish)
        t["final_finish_reason"].append(finish)
        t["api"].append(APIS[k % len(APIS)])
        t["tags"].append(None)
    return t, p, c


def generate(path: Path, n: int) -> int:
    """Write ``n`` transactions; returns the number of chunk rows."""
    import pyarrow as pa

    from luthien_lab.store import Store
    from luthien_lab.store._arrow_schema import arrow_schema

    rng = random.Random(7)
    chunks = 0
    with Store(path, exclusive=True) as store:
        for first in range(0, n, BATCH):
            t, p, c = _chunk_columns(min(BATCH, n - first), first, rng)
            chunks += len(c["transaction_id"])
            tables = {}
            for name, cols in (("transactions", t), ("payloads", p), ("chunk_rows", c)):
                schema = arrow_schema(name)
                full = {
                    f.name: cols.get(f.name, [None] * len(cols["transaction_id"])) for f in schema
                }
                tables[name] = pa.Table.from_pydict(full, schema=schema)
            store.write_tables(tables)
    return chunks


CHILD = """
import json, os, resource, sys, time
sys.path.insert(0, {root!r})
from luthien_lab.evaluate import evaluate
from luthien_lab.policies import StringReplacePolicy
from luthien_lab.store import Store
store = Store({path!r}, read_only=True)
cases = store.cases(limit={limit})
policy = StringReplacePolicy(replacements={{"OpenAI": "[REDACTED]", "lighthouse": "beacon"}})
evaluate({{"warm": policy}}, store.cases(limit=20), progress=False)
def rss_kb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
before = rss_kb()
start, cpu = time.perf_counter(), time.process_time()
result = evaluate({{"candidate": policy}}, cases, progress=False)
wall, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({{"cases": len(result), "changed": int(result.df["changed"].sum()),
    "wall": wall, "cpu": cpu, "rss_before_kb": before,
    "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "result_kb": int(result.df.memory_usage(deep=True).sum() // 1024)}}))
"""


def measure(path: Path, limit: int) -> dict[str, Any]:
    root = str(Path(__file__).resolve().parents[1])
    code = CHILD.format(root=root, path=str(path), limit=limit)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--keep", help="write the store here and keep it")
    args = parser.parse_args()
    n = args.transactions
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.keep) if args.keep else Path(tmp) / "bench_store.duckdb"
        start = time.perf_counter()
        chunks = generate(path, n)
        made = time.perf_counter() - start
        size = path.stat().st_size / 1e6
        print(
            f"generated {n:,} transactions, {chunks:,} chunk rows ({chunks / n:.1f} per "
            f"transaction) in {made:.1f} s; store file {size:.0f} MB\n"
        )
        print(
            f"{'transactions':>12}{'wall s':>9}{'cases/s':>9}{'CPU s':>8}{'chunks/s':>10}"
            f"{'RSS before':>12}{'peak RSS':>10}{'growth':>9}{'result table':>14}"
        )
        for limit in (max(1, n // 10), n):
            m = measure(path, limit)
            assert m["cases"] == limit, m
            growth = (m["peak_kb"] - m["rss_before_kb"]) / 1024
            print(
                f"{limit:>12,}{m['wall']:>9.1f}{limit / m['wall']:>9,.0f}{m['cpu']:>8.1f}"
                f"{chunks * limit / n / m['wall']:>10,.0f}"
                f"{m['rss_before_kb'] / 1024:>10.0f}MB{m['peak_kb'] / 1024:>8.0f}MB"
                f"{growth:>7.0f}MB{m['result_kb'] / 1024:>12.0f}MB"
            )


if __name__ == "__main__":
    main()
