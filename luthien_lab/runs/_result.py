"""``RunResult``: one finished run; it shows itself with the widgets' three views
(streams, timeline, diff), imported only when displayed."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from luthien_lab.runs._trace import TransactionTrace

if TYPE_CHECKING:
    import pandas as pd

    from luthien_lab.widgets._diff import ResponseDiff
    from luthien_lab.widgets._timeline import Timeline

__all__ = ["RunResult"]


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

        from luthien_lab.widgets._panes import streams_html

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
        from html import escape

        from luthien_lab.widgets._panes import run_html, streams_html

        shadows = "".join(
            f"<h4>shadow {escape(name)}</h4>" + streams_html(shadow.trace_data)
            for name, shadow in self.shadows.items()
        )
        return run_html(self.trace_data) + shadows

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": repr(self), "text/html": self._repr_html_()}
