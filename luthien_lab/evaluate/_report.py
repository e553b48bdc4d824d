"""``EvalResult``: the table of an evaluation, its per-policy summary and a chart."""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["COLUMNS", "BarChart", "EvalResult"]

COLUMNS = [
    "case",
    "policy",
    "status",
    "changed",
    "blocked",
    "refused",
    "text",
    "tool_calls",
    "finish_reason",
    "ttfc_ms",
    "total_ms",
    "added_ttfc_ms",
    "added_total_ms",
    "chunks_in",
    "chunks_out",
    "error",
    "transaction_id",
    "reference",
    "diff",
    "model",
    "started_at",
]


@dataclass
class EvalResult:
    """One row per (case, policy) in ``df`` (see :data:`COLUMNS`).

    ``changed``: the output differs from the ``reference``: for a case recorded in a
    store, what production sent the client (``"production"``: text, tool calls,
    finish reason or blocked differ); else what the provider sent (``"provider"``:
    text or tool calls differ); ``diff``: how (a unified diff of the text, then tool
    call / finish / blocked lines; None when unchanged); ``model``, ``started_at``:
    the recorded transaction's (``started_at`` None for other cases);
    ``blocked``: status ``blocked`` or tool calls removed; ``refused``: the policy
    refused the request; ``added_*_ms``: time to first chunk / total, minus the
    baseline policy's on the same case (NaN without a baseline);
    ``error``: ``"Type: message"`` of a failed run.
    """

    df: pd.DataFrame
    policies: list[str]
    baseline: str | None = None
    baseline_df: pd.DataFrame | None = None
    store: str | None = None
    run_id: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    # pandas-like conveniences, so ``result[result.changed]`` reads naturally
    def __len__(self) -> int:
        return len(self.df)

    def __getitem__(self, key: Any) -> Any:
        return self.df[key]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in ("df", "policies"):
            raise AttributeError(name)
        return getattr(self.df, name)

    @property
    def cases(self) -> list[str]:
        return list(dict.fromkeys(self.df["case"]))

    def for_policy(self, name: str) -> pd.DataFrame:
        return self.df[self.df["policy"] == name].reset_index(drop=True)

    def errors(self) -> pd.DataFrame:
        return self.df[self.df["error"].notna()].reset_index(drop=True)

    def summary(self) -> pd.DataFrame:
        """Per policy: cases, change/block/refusal/error rates, median and p95 added latency."""
        rows = []
        for name in self.policies:
            part = self.df[self.df["policy"] == name]
            n = len(part)

            def rate(column: str, part: pd.DataFrame = part, n: int = n) -> float:
                return float(part[column].sum()) / n if n else float("nan")

            ttfc = part["added_ttfc_ms"].dropna()
            total = part["added_total_ms"].dropna()
            rows.append(
                {
                    "policy": name,
                    "cases": n,
                    "change_rate": rate("changed"),
                    "block_rate": rate("blocked"),
                    "refusal_rate": rate("refused"),
                    "error_rate": float(part["error"].notna().sum()) / n if n else float("nan"),
                    "median_added_ttfc_ms": ttfc.median() if len(ttfc) else float("nan"),
                    "p95_added_ttfc_ms": ttfc.quantile(0.95) if len(ttfc) else float("nan"),
                    "median_added_total_ms": total.median() if len(total) else float("nan"),
                    "p95_added_total_ms": total.quantile(0.95) if len(total) else float("nan"),
                }
            )
        return pd.DataFrame(rows).set_index("policy")

    def plot(self, *, backend: str = "auto") -> Any:
        """Policies side by side: change/block/error rates and median added latency.

        matplotlib when it is installed (a ``Figure``), else a :class:`BarChart`
        (SVG, displayed inline by Jupyter). ``backend="svg"`` forces the SVG.
        """
        summary = self.summary()
        if backend not in ("auto", "svg", "matplotlib"):
            raise ValueError(f"backend must be 'auto', 'svg' or 'matplotlib', not {backend!r}")
        if backend != "svg":
            try:
                import matplotlib.pyplot as plt
            except ImportError:
                if backend == "matplotlib":
                    raise ImportError(
                        "matplotlib is not installed; pip install matplotlib or use backend='svg'"
                    ) from None
            else:
                return _matplotlib_chart(plt, summary)
        return BarChart.from_summary(summary)

    def __repr__(self) -> str:
        return (
            f"EvalResult({len(self.cases)} cases x {len(self.policies)} policies, "
            f"baseline={self.baseline!r})\n{self.summary().to_string()}"
        )

    def _repr_html_(self) -> str:
        return (
            f"<p><b>EvalResult</b>: {len(self.cases)} cases &times; {len(self.policies)} "
            f"policies (baseline {html.escape(str(self.baseline))})</p>"
            + self.summary().to_html(float_format=lambda v: f"{v:.3g}")
            + self.df.drop(columns=["transaction_id"]).to_html(max_rows=50)
        )


_METRICS = (
    ("change_rate", "changed", "#4C78A8"),
    ("block_rate", "blocked", "#F58518"),
    ("error_rate", "errors", "#E45756"),
)


def _matplotlib_chart(plt: Any, summary: pd.DataFrame) -> Any:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 0.6 * len(summary) + 2))
    names = list(summary.index)
    width = 0.8 / len(_METRICS)
    for i, (column, label, color) in enumerate(_METRICS):
        left.barh(
            [y + i * width for y in range(len(names))],
            summary[column],
            height=width,
            label=label,
            color=color,
        )
    left.set_yticks([y + width for y in range(len(names))], names)
    left.set_xlim(0, 1)
    left.set_title("share of cases")
    left.legend()
    right.barh(names, summary["median_added_total_ms"].fillna(0), color="#54A24B")
    right.set_title("median added latency (ms)")
    fig.tight_layout()
    plt.close(fig)
    return fig


class BarChart:
    """A dependency-free SVG chart of an evaluation summary."""

    def __init__(self, svg: str):
        self.svg = svg

    @classmethod
    def from_summary(
        cls,
        summary: pd.DataFrame,
        metrics: tuple[tuple[str, str, str], ...] = _METRICS,
        latency: str | None = "median_added_total_ms",
        title: str = "share of cases",
    ) -> BarChart:
        """One row per index entry of ``summary``: a bar per ``(column, label, color)``
        of ``metrics`` (rates, 0..1), and beside them the ``latency`` column (ms),
        when given."""
        names = [str(n) for n in summary.index]
        label_w, bar_w, row_h, bar_h = 180, 240, 18 * len(metrics) + 10, 16
        height = 40 + row_h * len(names)
        width = label_w + (2 if latency else 1) * bar_w + 80
        lat = summary[latency].fillna(0.0) if latency else None
        lat_max = max(float(lat.max()) if lat is not None and len(lat) else 0.0, 1e-9)
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            'font-family="sans-serif" font-size="11">',
            f'<text x="{label_w}" y="14" font-weight="bold">{html.escape(title)}</text>',
        ]
        if latency:
            parts.append(
                f'<text x="{label_w + bar_w + 40}" y="14" font-weight="bold">'
                "median added latency (ms)</text>"
            )
        for row, name in enumerate(names):
            y0 = 26 + row * row_h
            parts.append(f'<text x="4" y="{y0 + row_h / 2:.0f}">{html.escape(name[-28:])}</text>')
            for i, (column, label, color) in enumerate(metrics):
                value = float(summary.loc[summary.index[row], column] or 0.0)
                y = y0 + i * 18
                parts.append(
                    f'<rect x="{label_w}" y="{y}" width="{bar_w * value:.1f}" '
                    f'height="{bar_h}" fill="{color}"><title>{label}: {value:.1%}</title></rect>'
                )
                parts.append(
                    f'<text x="{label_w + bar_w * value + 4:.1f}" y="{y + 12}">'
                    f"{label} {value:.0%}</text>"
                )
            if lat is None:
                continue
            ms = float(lat.iloc[row])
            parts.append(
                f'<rect x="{label_w + bar_w + 40}" y="{y0}" width="{bar_w * ms / lat_max:.1f}" '
                f'height="{bar_h}" fill="#54A24B"><title>{ms:.3f} ms</title></rect>'
            )
            parts.append(
                f'<text x="{label_w + bar_w + 44 + bar_w * ms / lat_max:.1f}" '
                f'y="{y0 + 12}">{ms:.2f}</text>'
            )
        parts.append("</svg>")
        return cls("".join(parts))

    def _repr_svg_(self) -> str:
        return self.svg

    def save(self, path: str | os.PathLike[str]) -> Path:
        out = Path(path)
        out.write_text(self.svg, encoding="utf-8")
        return out
