"""``benchmarks/bench_gateway_app.py`` measures the passthrough path only after checking
that the app really passed the stand-in's stream through."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from luthien_lab.gateway._native_http import SessionPool

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_gateway_app as bench


@pytest.mark.parametrize("policy", ["passthrough", "replace"])
async def test_the_app_passes_the_stand_ins_stream_through(monkeypatch, policy):
    monkeypatch.setattr(SessionPool, "client", SessionPool.client)  # restored after
    stand_in = bench.StandIn(bench.frames(6), one_read=False)
    app = bench.make_app(policy, stand_in)
    async with app.router.lifespan_context(app):
        await bench.check(app, stand_in)
        sink: list[bytes] = []
        await bench.through_app(app, sink)
    assert len(sink) >= 2 and b"".join(sink).endswith(b"data: [DONE]\n\n")


async def test_a_stream_the_policy_changes_fails_the_check(monkeypatch):
    monkeypatch.setattr(SessionPool, "client", SessionPool.client)
    parts = bench.frames(4)
    parts[1] = bench.frame(content="Hello there")  # the replace policy rewrites it
    stand_in = bench.StandIn(parts, one_read=True)
    app = bench.make_app("replace", stand_in)
    async with app.router.lifespan_context(app):
        with pytest.raises(SystemExit, match="did not pass the stream through"):
            await bench.check(app, stand_in)
