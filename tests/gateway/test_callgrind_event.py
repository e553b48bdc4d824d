"""``benchmarks/callgrind_event.py`` counts the gateway's own per-event pieces: each of
its stages does to the events what the gateway does, and the last one writes them out
as they came."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import callgrind_event as bench

from luthien_lab.streaming.assembler import DELTA
from luthien_lab.streaming.lazy import original


@pytest.mark.parametrize("policy", ["passthrough", "replace"])
async def test_the_last_stage_writes_the_events_as_they_came(policy):
    assert await bench.run_stages("egress", 4, policy) == bench.EVENT * 4


async def test_each_stage_hands_on_what_the_next_one_takes():
    parsed = await bench.run_stages("split", 3, "passthrough")
    assert [raw for _event, raw in parsed] == [bench.EVENT] * 3
    chunks = await bench.run_stages("chunk", 3, "passthrough")
    assert [original(chunk) for chunk in chunks] == [bench.EVENT] * 3
    assert [chunk.choices[0].delta.content for chunk in chunks] == ["Local ec"] * 3
    events = await bench.run_stages("assembler", 3, "passthrough")
    assert [[kind for kind, _block in caused] for caused in events] == [[DELTA]] * 3
    batches = await bench.run_stages("pipeline", 3, "passthrough")
    assert [len(batch) for batch in batches] == [3]  # one read, one group
    parses = await bench.run_stages("parse", 2, "passthrough")
    assert parses == [parsed[0][0]] * 2


def test_the_pieces_are_the_differences_of_consecutive_stages():
    stages = list(bench.STAGES)
    for stage, before in bench.PIECES.values():
        assert stage in stages
        assert before is None or stages.index(before) < stages.index(stage)
