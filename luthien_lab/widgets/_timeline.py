"""The hook timeline: which hook fired on which ingress chunk, how long it took, what it emitted.

A picture drawn as inline SVG (no JavaScript, so it renders in JupyterLab, in a
static HTML export and in tests alike):

- one lane per hook that fired, ingress chunks along the x-axis (column 0 is the
  request, before the first chunk; the last column is the end of the stream); the
  stages of a ``SerialPolicy`` each get their own group of lanes (tinted), below the
  chain's own hooks;
- a lane per kind of event a policy emitted with a ``chunk_index`` (an agent rule's
  block or rewrite, a judge's verdict), a dot where it happened (red: block, amber:
  rewrite, green: allow), in its stage's group;
- a mark where a hook fired, its colour showing the duration (green fast → red slow,
  log scale relative to the slowest firing);
- the ingress blocks (content, each tool call, thinking) shaded behind the lanes;
- an egress lane beneath: the egress chunks each firing produced, stacked;
- every mark carries an SVG ``<title>``: hovering shows the chunk's payload (text
  delta / tool args / finish reason), the hook's timing and what it emitted.

Long streams stay readable and bounded: past ``max_columns`` columns, neighbouring
chunks are aggregated into bins (the title then says which chunks and how many
firings), and the drawing scrolls horizontally.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING, Any

import ipywidgets

from luthien_lab.policies.serial_view import event_lane, lane_label, timeline_lanes
from luthien_lab.runs import TransactionTrace

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EventMark", "LaneGroup", "Timeline", "TimelineDrawing", "draw_timeline", "render_svg"]

# Lanes in pipeline order; unknown hooks go after these, in first-firing order.
HOOK_ORDER = (
    "on_request",
    "on_chunk_received",
    "on_thinking_delta",
    "on_thinking_complete",
    "on_content_delta",
    "on_content_complete",
    "on_tool_call_delta",
    "on_tool_call_complete",
    "on_finish_reason",
    "on_stream_complete",
    "process_full_response",
)
BLOCK_COLOURS = {"content": "#4c78a8", "thinking": "#b279a2", "tool_call": "#f58518"}
LABEL_W = 170
LANE_H = 22
BAND_H = 18
EGRESS_H = 40
AXIS_H = 18
TITLE_CHARS = 90


@dataclass
class Mark:
    lane: int
    hook: str
    column: int
    first_chunk: int
    last_chunk: int
    firings: int
    total_ns: int
    max_ns: int
    egress: int
    detail: str


@dataclass
class Block:
    kind: str
    label: str
    first_column: int
    last_column: int


@dataclass
class EgressMark:
    column: int
    count: int
    detail: str


@dataclass
class EventMark:
    """An event a policy emitted with a ``chunk_index`` (a judge's verdict, a block)."""

    lane: int
    name: str
    column: int
    decision: str | None
    detail: str


@dataclass
class LaneGroup:
    """The lanes of one stage of a ``SerialPolicy`` (``first``..``last`` inclusive)."""

    label: str
    first: int
    last: int


@dataclass
class TimelineDrawing:
    """What the timeline draws, before it becomes SVG (tests read this)."""

    lanes: list[str]
    columns: int
    bin_size: int
    ingress_chunks: int
    egress_chunks: int
    marks: list[Mark] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    egress: list[EgressMark] = field(default_factory=list)
    events: list[EventMark] = field(default_factory=list)
    groups: list[LaneGroup] = field(default_factory=list)

    def column_of(self, chunk_index: int) -> int:
        """The column of an ingress chunk index (-1: the request column)."""
        return (chunk_index + 1) // self.bin_size


def _short(text: str, limit: int = TITLE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt_ns(ns: int) -> str:
    if ns >= 1_000_000:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e3:.1f} µs"


def draw_timeline(trace: TransactionTrace, max_columns: int = 400) -> TimelineDrawing:
    """Lay out the timeline of ``trace``: lanes, marks, block shading, egress marks."""
    if max_columns < 2:
        raise ValueError(f"max_columns must be at least 2, got {max_columns!r}")
    n_in = len(trace.ingress)
    last_index = max([n_in, *(h.chunk_index for h in trace.hooks)], default=n_in)
    slots = last_index + 2  # the request column, the chunks, the end-of-stream column
    bin_size = max(1, math.ceil(slots / max_columns))
    columns = math.ceil(slots / bin_size)
    lanes, lane_groups, staged = timeline_lanes(
        [h.hook for h in trace.hooks], trace.events, HOOK_ORDER
    )
    drawing = TimelineDrawing(lanes, columns, bin_size, n_in, len(trace.egress))
    drawing.groups = [LaneGroup(*group) for group in lane_groups]
    ingress = {r.index: r for r in trace.ingress}
    egress = {r.index: r for r in trace.egress}

    groups: dict[tuple[int, int], list[Any]] = {}
    for h in trace.hooks:
        groups.setdefault((lanes.index(h.hook), drawing.column_of(h.chunk_index)), []).append(h)
    for (lane, column), firings in sorted(groups.items()):
        first = min(h.chunk_index for h in firings)
        last = max(h.chunk_index for h in firings)
        total = sum(h.duration_ns for h in firings)
        peak = max(h.duration_ns for h in firings)
        produced = sum(h.egress_end - h.egress_start for h in firings)
        where = "request" if first < 0 else f"chunk {first}"
        if last != first:
            where = f"chunks {max(first, 0)}–{last}"
        lines = [f"{firings[0].hook} · {where}"]
        if len(firings) > 1:
            lines.append(f"{len(firings)} firings, total {_fmt_ns(total)}, max {_fmt_ns(peak)}")
        else:
            lines.append(f"took {_fmt_ns(total)} (at +{_fmt_ns(firings[0].start_offset_ns)})")
        block = firings[-1]
        if block.block_kind:
            lines.append(f"block: {block.block_kind} {block.block_id or ''}".rstrip())
        record = ingress.get(first) if first >= 0 else None
        if record is not None:
            lines.append("payload: " + _short(record.describe()))
            if last != first and last in ingress:
                lines.append("… last: " + _short(ingress[last].describe()))
        if produced:
            lines.append(f"emitted {produced} egress chunk(s)")
        drawing.marks.append(
            Mark(
                lane,
                firings[0].hook,
                column,
                first,
                last,
                len(firings),
                total,
                peak,
                produced,
                "\n".join(lines),
            )
        )

    # Block shading: the ingress chunks each block spans, from the chunk payloads
    # the instrumentation reported and the blocks the hooks were called with.
    spans: dict[tuple[str, str], list[int]] = {}
    names: dict[str, str] = {}
    for r in trace.ingress:
        if r.reasoning:
            spans.setdefault(("thinking", "thinking"), []).append(r.index)
        if r.content:
            spans.setdefault(("content", "content"), []).append(r.index)
        for call in r.tool_calls or []:
            key = ("tool_call", str(call.get("index", 0)))
            spans.setdefault(key, []).append(r.index)
            if call.get("name"):
                names[key[1]] = call["name"]
    for h in trace.hooks:
        if h.hook in staged:
            continue  # a stage's blocks are its own ingress, not the transaction's
        if h.block_kind and h.chunk_index >= 0 and h.chunk_index < n_in:
            ident = str(h.tool_index) if h.block_kind == "tool_call" else h.block_kind
            spans.setdefault((h.block_kind, ident), []).append(h.chunk_index)
    for (kind, ident), indices in spans.items():
        label = (
            kind if kind != "tool_call" else f"tool {ident}: {names.get(ident, '')}".rstrip(": ")
        )
        drawing.blocks.append(
            Block(kind, label, drawing.column_of(min(indices)), drawing.column_of(max(indices)))
        )
    drawing.blocks.sort(key=lambda b: (b.first_column, b.kind))

    # Egress beneath: the chunks each firing put on the egress queue, at its column.
    out: dict[int, list[int]] = {}
    for h in trace.hooks:
        if h.egress_end > h.egress_start and h.hook not in staged:
            column = drawing.column_of(h.chunk_index)
            out.setdefault(column, []).extend(range(h.egress_start, h.egress_end))
    for column, indices in sorted(out.items()):
        shown = [f"#{i} " + _short(egress[i].describe(), 60) for i in indices[:8] if i in egress]
        if len(indices) > 8:
            shown.append(f"… and {len(indices) - 8} more")
        drawing.egress.append(EgressMark(column, len(indices), "\n".join(shown)))
    for name, data in trace.events:
        lane_id = event_lane(name, data)
        if lane_id is None:
            continue
        decision = data.get("decision")
        lines = [f"{name} · chunk {data['chunk_index']}" if data["chunk_index"] >= 0 else name]
        for field_name in (
            "stage_name",
            "tool",
            "target",
            "decision",
            "reason",
            "rule",
            "cached",
            "error",
        ):
            if data.get(field_name) not in (None, ""):
                lines.append(f"{field_name}: {_short(str(data[field_name]))}")
        drawing.events.append(
            EventMark(
                lanes.index(lane_id),
                name,
                drawing.column_of(data["chunk_index"]),
                str(decision) if decision is not None else None,
                "\n".join(lines),
            )
        )
    return drawing


def _duration_colour(ns: int, slowest: int) -> str:
    """Green (fast) to red (slowest), on a log scale."""
    if slowest <= 0:
        return "hsl(120,60%,42%)"
    share = math.log1p(max(ns, 0)) / math.log1p(slowest)
    return f"hsl({120 - 120 * share:.0f},70%,45%)"


def render_svg(drawing: TimelineDrawing) -> str:
    """The drawing as one ``<svg>`` element (horizontally scrollable when wrapped)."""
    col_w = max(4, min(28, 1000 // max(drawing.columns, 1)))
    labels = [lane_label(lane) for lane in drawing.lanes]
    label_w = max([LABEL_W, *(len(label) * 6 + 10 for label in labels)])
    width = label_w + drawing.columns * col_w + 10
    lanes_top = BAND_H
    lanes_h = max(len(drawing.lanes), 1) * LANE_H
    egress_top = lanes_top + lanes_h + 4
    height = egress_top + EGRESS_H + AXIS_H
    x0 = label_w
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="luthien-timeline" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" '
        f'font-size="11" data-columns="{drawing.columns}" data-bin="{drawing.bin_size}">'
    ]
    for b in drawing.blocks:
        x = x0 + b.first_column * col_w
        w = (b.last_column - b.first_column + 1) * col_w
        colour = BLOCK_COLOURS.get(b.kind, "#999")
        parts.append(
            f'<rect class="block block-{b.kind}" x="{x}" y="0" width="{w}" '
            f'height="{egress_top + EGRESS_H}" fill="{colour}" fill-opacity="0.12">'
            f"<title>{escape(b.label)}</title></rect>"
            f'<text class="block-label" x="{x + 2}" y="12" fill="{colour}">'
            f"{escape(_short(b.label, 30))}</text>"
        )
    for k, group in enumerate(drawing.groups):
        y = lanes_top + group.first * LANE_H
        h = (group.last - group.first + 1) * LANE_H
        tint = "#f4f0fa" if k % 2 == 0 else "#eef5f0"
        parts.append(
            f'<rect class="stage-group" x="0" y="{y}" width="{width}" height="{h}" '
            f'fill="{tint}"><title>{escape(group.label)}</title></rect>'
            f'<line x1="0" y1="{y}" x2="{width}" y2="{y}" stroke="#999"/>'
        )
    for i, label in enumerate(labels):
        y = lanes_top + i * LANE_H
        parts.append(
            f'<line x1="{x0}" y1="{y + LANE_H}" x2="{width}" y2="{y + LANE_H}" stroke="#ddd"/>'
            f'<text class="lane" x="4" y="{y + LANE_H - 7}">{escape(label)}</text>'
        )
    slowest = max((m.max_ns for m in drawing.marks), default=0)
    mark_w = max(col_w - 1, 2)
    for m in drawing.marks:
        x = x0 + m.column * col_w
        y = lanes_top + m.lane * LANE_H + 3
        parts.append(
            f'<rect class="mark" data-lane="{escape(m.hook)}" data-column="{m.column}" '
            f'data-chunk="{m.first_chunk}" x="{x}" y="{y}" width="{mark_w}" '
            f'height="{LANE_H - 6}" fill="{_duration_colour(m.max_ns, slowest)}">'
            f"<title>{escape(m.detail)}</title></rect>"
        )
    for ev in drawing.events:
        cx = x0 + ev.column * col_w + mark_w / 2
        cy = lanes_top + ev.lane * LANE_H + LANE_H / 2
        colour = {"block": "#c53030", "rewrite": "#b7791f", "allow": "#2f855a"}.get(
            ev.decision or "", "#4c78a8"
        )
        parts.append(
            f'<circle class="event" data-lane="{escape(drawing.lanes[ev.lane])}" '
            f'data-column="{ev.column}" cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{colour}">'
            f"<title>{escape(ev.detail)}</title></circle>"
        )
    parts.append(f'<text class="lane" x="4" y="{egress_top + 14}">egress chunks</text>')
    for e in drawing.egress:
        x = x0 + e.column * col_w
        stacked = min(e.count, 5)
        for k in range(stacked):
            parts.append(
                f'<rect class="egress-tick" x="{x}" y="{egress_top + 2 + k * 7}" '
                f'width="{mark_w}" height="5" fill="#54a24b"/>'
            )
        parts.append(
            f'<rect class="egress" data-column="{e.column}" data-count="{e.count}" x="{x}" '
            f'y="{egress_top}" width="{mark_w}" height="{EGRESS_H - 2}" fill-opacity="0">'
            f"<title>{escape(e.detail or f'{e.count} egress chunk(s)')}</title></rect>"
        )
    axis_y = egress_top + EGRESS_H + 12
    step = max(1, math.ceil(drawing.columns / 12))
    for column in range(0, drawing.columns, step):
        first_chunk = column * drawing.bin_size - 1
        label = "req" if first_chunk < 0 else str(first_chunk)
        parts.append(
            f'<text class="tick" x="{x0 + column * col_w}" y="{axis_y}" fill="#666">{label}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _caption(drawing: TimelineDrawing) -> str:
    binned = f", {drawing.bin_size} chunks per column" if drawing.bin_size > 1 else ""
    return (
        f"{drawing.ingress_chunks} ingress → {drawing.egress_chunks} egress chunks, "
        f"{sum(m.firings for m in drawing.marks)} hook firings{binned}"
    )


def timeline_html(drawing: TimelineDrawing) -> str:
    return (
        '<div class="luthien-timeline-wrap" style="overflow-x:auto;max-width:100%">'
        f'<div style="font:12px sans-serif;color:#555">{escape(_caption(drawing))}</div>'
        f"{render_svg(drawing)}</div>"
    )


class Timeline(ipywidgets.HTML):
    """The hook timeline of one transaction, as an ``ipywidgets.HTML`` holding SVG.

    ``Timeline(trace)``; ``Timeline.from_store(store, tx_id)`` for a recording;
    ``update(trace)`` redraws (the live runner calls it, throttled).
    """

    def __init__(self, trace: TransactionTrace | None = None, *, max_columns: int = 400, **kw: Any):
        super().__init__(**kw)
        self.max_columns = max_columns
        self.trace = trace or TransactionTrace("")
        self.drawing = draw_timeline(self.trace, max_columns)
        self.value = timeline_html(self.drawing)

    def __repr__(self) -> str:
        d = self.drawing
        return f"<Timeline lanes={len(d.lanes)} ingress={d.ingress_chunks} marks={len(d.marks)}>"

    @classmethod
    def from_store(cls, store: Any, transaction_id: str, **kw: Any) -> Timeline:
        return cls(TransactionTrace.from_store(store, transaction_id), **kw)

    def update(self, trace: TransactionTrace | None = None) -> None:
        if trace is not None:
            self.trace = trace
        self.drawing = draw_timeline(self.trace, self.max_columns)
        self.value = timeline_html(self.drawing)

    @property
    def svg(self) -> str:
        return render_svg(self.drawing)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per hook firing (the store's ``hooks`` columns) plus ``payload``,
        the ingress chunk the hook fired on, described."""
        frame = self.trace.hooks_frame()
        described = {r.index: r.describe() for r in self.trace.ingress}
        frame["payload"] = [described.get(i) for i in frame["chunk_index"]]
        return frame
