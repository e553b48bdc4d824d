"""``RunResult``: one finished run, with its three views (streams, timeline, diff)."""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING, Any

from luthien_lab.widgets._trace import ChunkRecord, TransactionTrace

if TYPE_CHECKING:
    import pandas as pd

    from luthien_lab.widgets._diff import ResponseDiff
    from luthien_lab.widgets._timeline import Timeline

__all__ = ["RunResult", "counters_text", "pane_html", "stream_text"]

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


class RunResult:
    """A finished run: the transformed and raw responses, status, and the views.

    - ``text`` / ``raw_text``: transformed and raw response text;
    - ``tool_calls`` / ``raw_tool_calls``: ``[{"id", "name", "arguments"}]`` (arguments
      parsed when they are JSON);
    - ``status`` (ok, error, cancelled, blocked), ``error``, ``exception``;
    - ``trace``: DataFrame, one row per hook firing; ``trace_data``: the
      :class:`TransactionTrace` behind every view;
    - ``timeline()``, ``diff()``: the widgets; ``show()``: all three views as a widget;
    - ``shadows``: ``{name: RunResult}`` of the shadow policies (``lab.run(shadow=...)``).

    Displaying it in a notebook shows the three views as static HTML; its text
    form is deterministic (no ids, no timings) so that notebook tests can compare it.
    """

    def __init__(
        self,
        trace: TransactionTrace,
        *,
        exception: BaseException | None = None,
        store: Any = None,
    ) -> None:
        self.trace_data = trace
        self.exception = exception
        self.store = store
        self.shadows: dict[str, RunResult] = {}
        """Each shadow policy's run on the same provider answer, by name."""

    @property
    def transaction_id(self) -> str:
        return self.trace_data.transaction_id

    @property
    def status(self) -> str:
        return self.trace_data.status or "running"

    @property
    def error(self) -> str | None:
        return self.trace_data.error

    @property
    def text(self) -> str:
        return self.trace_data.text

    @property
    def raw_text(self) -> str:
        return self.trace_data.raw_text

    @staticmethod
    def _calls(response: dict[str, Any] | None) -> list[dict[str, Any]]:
        calls = []
        for call in (response or {}).get("tool_calls") or []:
            try:
                args: Any = json.loads(call["arguments"]) if call["arguments"] else {}
            except ValueError:
                args = call["arguments"]
            calls.append({"id": call["id"], "name": call["name"], "arguments": args})
        return calls

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        return self._calls(self.trace_data.final_response)

    @property
    def raw_tool_calls(self) -> list[dict[str, Any]]:
        return self._calls(self.trace_data.original_response)

    @property
    def trace(self) -> pd.DataFrame:
        return self.timeline().to_dataframe()

    def timeline(self, **kw: Any) -> Timeline:
        from luthien_lab.widgets._timeline import Timeline

        return Timeline(self.trace_data, **kw)

    def diff(self, mode: str = "side_by_side") -> ResponseDiff:
        from luthien_lab.widgets._diff import ResponseDiff

        return ResponseDiff(self.trace_data, mode=mode)

    def raise_for_status(self) -> RunResult:
        """Raise the run's exception if it failed (returns self otherwise)."""
        if self.exception is not None:
            raise self.exception
        return self

    def show(self) -> Any:
        """The three views as one widget."""
        import ipywidgets

        return ipywidgets.VBox(
            [ipywidgets.HTML(streams_html(self.trace_data)), self.timeline(), self.diff()]
        )

    def __repr__(self) -> str:
        t = self.trace_data
        policy = t.policy.rsplit(".", 1)[-1]
        text = self.text if len(self.text) <= 200 else self.text[:199] + "…"
        lines = [
            f"RunResult(status={self.status!r}, policy={policy!r}, model={t.model!r}, "
            f"chunks_in={len(t.ingress)}, chunks_out={len(t.egress)}, "
            f"hook_firings={len(t.hooks)})",
            f"text: {text!r}",
        ]
        if self.tool_calls:
            lines.append("tool_calls: " + ", ".join(c["name"] for c in self.tool_calls))
        if t.error:
            lines.append(f"error: {t.error_type}: {t.error}")
        for name, shadow in self.shadows.items():
            lines.append(f"shadow {name}: {shadow.status}: {shadow.text!r}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from luthien_lab.widgets._diff import compare, render_diff
        from luthien_lab.widgets._timeline import draw_timeline, timeline_html

        return (
            '<div class="luthien-run">'
            + streams_html(self.trace_data)
            + "<h4>hook timeline</h4>"
            + timeline_html(draw_timeline(self.trace_data))
            + "<h4>raw → transformed</h4>"
            + render_diff(compare(self.trace_data))
            + "</div>"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": repr(self), "text/html": self._repr_html_()}
