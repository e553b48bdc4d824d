"""The HTML panes a run is shown in: both streams side by side, counters, the error."""

from __future__ import annotations

from html import escape

from luthien_lab.runs import ChunkRecord, TransactionTrace

__all__ = ["counters_text", "error_html", "pane_html", "run_html", "stream_text", "streams_html"]

PANE_STYLE = (
    "white-space:pre-wrap;word-break:break-word;font:12px monospace;border:1px solid #ddd;"
    "padding:6px;margin:0;min-height:3em;max-height:24em;overflow:auto"
)


def stream_text(records: list[ChunkRecord]) -> str:
    """What a stream showed, in order: text, [thinking …] and [tool …] segments."""
    out: list[str] = []
    mode = None
    for r in records:
        if r.reasoning:
            if mode != "thinking":
                out.append("[thinking] ")
                mode = "thinking"
            out.append(r.reasoning)
        if r.content:
            if mode not in (None, "content"):
                out.append("\n")
            mode = "content"
            out.append(r.content)
        for call in r.tool_calls or []:
            key = f"tool{call.get('index')}"
            if mode != key:
                out.append(f"\n[tool {call.get('name') or ''}] ")
                mode = key
            out.append(call.get("arguments") or "")
        if r.finish_reason:
            out.append(f"\n[finish: {r.finish_reason}]")
            mode = None
    return "".join(out)


def pane_html(text: str, css_class: str) -> str:
    return f'<pre class="{css_class}" style="{PANE_STYLE}">{escape(text)}</pre>'


def _ms(ns: int | None) -> str:
    return "–" if ns is None else f"{ns / 1e6:.1f} ms"


def counters_text(trace: TransactionTrace, elapsed_ns: int | None = None) -> str:
    """``chunks in/out``, time to first (egress) chunk, elapsed, status."""
    elapsed = trace.end_offset_ns if trace.end_offset_ns is not None else elapsed_ns
    return (
        f"chunks in {len(trace.ingress)} · out {len(trace.egress)} · "
        f"first chunk {_ms(trace.first_egress_offset_ns)} · elapsed {_ms(elapsed)} · "
        f"{trace.status or 'running'}"
    )


def error_html(trace: TransactionTrace) -> str:
    if not trace.error or trace.status not in ("error", "cancelled"):
        return ""
    where = {
        "PolicyError": "the policy raised",
        "UpstreamError": "the provider failed",
        "UpstreamTimeoutError": "the provider went silent",
    }.get(trace.error_type or "", trace.status)
    return (
        '<div class="luthien-error" style="border:1px solid #c53030;background:#fff5f5;'
        'color:#c53030;padding:6px;font:12px monospace;white-space:pre-wrap">'
        f"<b>{escape(where)}</b> ({escape(trace.error_type or '')}): {escape(trace.error)}</div>"
    )


def streams_html(trace: TransactionTrace) -> str:
    """Raw and transformed streams side by side, with the counters."""
    raw = pane_html(stream_text(trace.ingress) or trace.raw_text, "luthien-raw")
    out = pane_html(stream_text(trace.egress) or trace.text, "luthien-transformed")
    return (
        f'<div style="font:12px sans-serif;color:#555">{escape(counters_text(trace))}</div>'
        + error_html(trace)
        + '<div style="display:flex;gap:6px"><div style="flex:1;min-width:0"><b>raw</b>'
        + raw
        + '</div><div style="flex:1;min-width:0"><b>transformed</b>'
        + out
        + "</div></div>"
    )


def run_html(trace: TransactionTrace) -> str:
    """A whole run as static HTML: the streams, the hook timeline, the diff."""
    from luthien_lab.widgets._diff import compare, render_diff
    from luthien_lab.widgets._timeline import draw_timeline, timeline_html

    return (
        '<div class="luthien-run">'
        + streams_html(trace)
        + "<h4>hook timeline</h4>"
        + timeline_html(draw_timeline(trace))
        + "<h4>raw → transformed</h4>"
        + render_diff(compare(trace))
        + "</div>"
    )
