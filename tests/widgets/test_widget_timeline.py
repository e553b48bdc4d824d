"""What the timeline draws for known traces, and that it stays bounded."""

from __future__ import annotations

import re

import pytest

from luthien_lab.runs import ChunkRecord, TransactionTrace
from luthien_lab.widgets import Timeline, draw_timeline
from tests.widgets.helpers import hook, known_trace


def test_lanes_follow_pipeline_order_and_marks_sit_on_their_chunks():
    drawing = draw_timeline(known_trace())
    assert drawing.lanes == [
        "on_request",
        "on_content_delta",
        "on_content_complete",
        "on_tool_call_delta",
        "on_tool_call_complete",
        "on_finish_reason",
        "on_stream_complete",
    ]
    assert drawing.bin_size == 1
    # column 0 is the request; chunk i is column i + 1; stream end is chunk 6 → column 7
    got = {(m.hook, m.column) for m in drawing.marks}
    assert got == {
        ("on_request", 0),
        ("on_content_delta", 2),
        ("on_content_delta", 3),
        ("on_content_complete", 4),
        ("on_tool_call_delta", 4),
        ("on_tool_call_delta", 5),
        ("on_tool_call_complete", 6),
        ("on_finish_reason", 6),
        ("on_stream_complete", 7),
    }
    slow = next(m for m in drawing.marks if m.hook == "on_content_delta" and m.first_chunk == 2)
    assert slow.max_ns == 50_000 and "world" in slow.detail and "emitted 1" in slow.detail


def test_blocks_are_shaded_over_their_chunks():
    drawing = draw_timeline(known_trace())
    blocks = {(b.kind, b.label): (b.first_column, b.last_column) for b in drawing.blocks}
    # content: chunks 1-2, completed (on_content_complete) on chunk 3 → columns 2-4
    assert blocks[("content", "content")] == (2, 4)
    assert blocks[("tool_call", "tool 0: get")] == (4, 6)  # chunks 3-4, completed on 5


def test_egress_marks_beneath_the_firings_that_produced_them():
    drawing = draw_timeline(known_trace())
    assert [(e.column, e.count) for e in drawing.egress] == [(2, 1), (3, 1), (6, 2)]
    assert "HELLO" in drawing.egress[0].detail
    assert "finish: tool_calls" in drawing.egress[2].detail


def test_svg_has_a_mark_per_firing_with_tooltips_and_colour_by_duration():
    timeline = Timeline(known_trace())
    svg = timeline.svg
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    marks = re.findall(r'<rect class="mark" data-lane="([^"]+)"[^>]*fill="([^"]+)"', svg)
    assert len(marks) == 9
    fills = {lane: fill for lane, fill in marks if lane == "on_content_delta"}
    assert fills  # the slowest firing is red (hue 0), the others greener
    assert "hsl(0," in svg
    assert svg.count('class="block block-content"') == 1
    assert svg.count('class="block block-tool_call"') == 1
    assert svg.count('class="egress"') == 3
    assert "text: &#x27;world&#x27;" in svg  # the payload shows on hover
    assert "<title>" in svg
    assert repr(timeline).startswith("<Timeline lanes=7")


def test_to_dataframe_has_store_columns_and_payloads():
    frame = Timeline(known_trace()).to_dataframe()
    assert list(frame.columns[:11]) == [
        "transaction_id",
        "seq",
        "hook",
        "chunk_index",
        "block_kind",
        "block_id",
        "tool_index",
        "start_offset_ns",
        "duration_ns",
        "egress_start",
        "egress_end",
    ]
    assert len(frame) == 9
    assert frame.loc[frame.seq == 2, "payload"].item() == "text: 'world'"


def big_trace(n: int) -> TransactionTrace:
    trace = TransactionTrace("tx-big", start_ns=0)
    trace.ingress = [ChunkRecord(i, i * 1000, content=f"word{i} ") for i in range(n)]
    trace.egress = [ChunkRecord(i, i * 1000 + 5, content=f"WORD{i} ") for i in range(n)]
    seq = 0
    for i in range(n):
        trace.hooks.append(hook(seq, "on_chunk_received", i))
        trace.hooks.append(hook(seq + 1, "on_content_delta", i, "content", e0=i, e1=i + 1))
        seq += 2
    trace.hooks.append(hook(seq, "on_stream_complete", n))
    return trace


def test_two_thousand_chunks_stay_bounded_and_every_lane_has_marks():
    timeline = Timeline(big_trace(2000))
    svg = timeline.svg
    assert len(svg.encode()) < 1_500_000
    drawing = timeline.drawing
    assert drawing.bin_size > 1 and drawing.columns <= 400
    for lane in drawing.lanes:
        assert f'data-lane="{lane}"' in svg
    binned = next(m for m in drawing.marks if m.hook == "on_content_delta" and m.firings > 1)
    assert f"{binned.firings} firings" in binned.detail
    assert sum(m.firings for m in drawing.marks) == 4001
    assert sum(e.count for e in drawing.egress) == 2000
    assert "overflow-x:auto" in timeline.value


def test_empty_trace_draws_without_marks():
    drawing = draw_timeline(TransactionTrace("nothing"))
    assert drawing.lanes == [] and drawing.marks == []
    with pytest.raises(ValueError, match="max_columns"):
        draw_timeline(TransactionTrace("x"), max_columns=1)
