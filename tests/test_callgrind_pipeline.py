"""``benchmarks/callgrind_pipeline.py`` counts what ``bench_pipeline.py`` times: each
policy's stream through the orchestrator and directly, and the yardstick, under the
labels its arithmetic reads back from callgrind's dumps."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import callgrind_pipeline as bench


async def test_each_label_consumes_the_whole_stream_once():
    consumed = await bench.measure(["noop", "replace-heavy"], 30, count=False)
    assert consumed == {
        "noop": 30,
        "noop" + bench.DIRECT: 30,
        # Each rewrite (" fox", " lazy" as " ", " dog" as "sleepy hound") takes the
        # place of the chunk it rewrites: as many chunks go out as came in.
        "replace-heavy": 30,
        "replace-heavy" + bench.DIRECT: 30,
        bench.YARDSTICK: 30,
    }


def test_the_dumps_are_read_back_by_label_and_the_cost_is_pipeline_less_direct(tmp_path):
    out = tmp_path / "pipeline.out"
    out.write_text("totals: 999\n")  # the final dump at exit, no label: not read
    for number, (label, total) in enumerate(
        [("noop", 5_000), ("noop" + bench.DIRECT, 1_000), (bench.YARDSTICK, 2_000)], 1
    ):
        text = f"version: 1\ndesc: Trigger: dump {label}\nevents: Ir\ntotals: {total}\n"
        (tmp_path / f"pipeline.out.{number}").write_text(text)
    totals = bench.dumps(out)
    assert totals == {"noop": 5_000, "noop" + bench.DIRECT: 1_000, bench.YARDSTICK: 2_000}
    assert bench.per_chunk(totals, ["noop"], 10) == {bench.YARDSTICK: 200.0, "noop": 400.0}
