"""What the transaction browser draws, as plain strings (HTML or text).

Pure functions of the rows ``_browse_query`` returns and of
:class:`~luthien_lab.widgets.TransactionTrace` objects, so they are tested without a
browser. A selected transaction is drawn with the same three views a notebook run
shows (``_panes.run_html``); a transaction with shadows adds the live output beside
each shadow's, with the word diff between them.
"""

from __future__ import annotations

from html import escape
from typing import Any

from luthien_lab.runs import TransactionTrace
from luthien_lab.widgets._browse_query import Page
from luthien_lab.widgets._diff import diff_html
from luthien_lab.widgets._panes import pane_html, run_html, stream_text

__all__ = [
    "HEADER",
    "detail_html",
    "empty_html",
    "pager_text",
    "row_label",
    "shadows_html",
    "short_policy",
]

_WIDTHS = (("time", 14), ("status", 9), ("api", 9), ("model", 20), ("policy", 20))
HEADER = "  ".join(name.ljust(width) for name, width in _WIDTHS) + "  prompt → response"
_SECTION = "<h4 style='margin:8px 0 2px'>{}</h4>"


def short_policy(policy_class: Any) -> str:
    """``pkg.mod.Cls`` → ``Cls``."""
    return str(policy_class or "").rsplit(".", 1)[-1]


def _clip(text: str, width: int) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _when(value: Any) -> str:
    try:
        return value.strftime("%m-%d %H:%M:%S")
    except AttributeError:
        return str(value or "")[:14]


def row_label(row: dict[str, Any]) -> str:
    """One transaction as one line of the list (monospace columns)."""
    cells = {
        "time": _when(row.get("started_at")),
        "status": row.get("status") or "",
        "api": row.get("api") or "",
        "model": row.get("model") or "",
        "policy": short_policy(row.get("policy_class")),
    }
    head = "  ".join(_clip(cells[name], width).ljust(width) for name, width in _WIDTHS)
    answer = row.get("response") or ""
    if row.get("tool_names"):
        answer = (answer + " " if answer else "") + "[" + ", ".join(row["tool_names"]) + "]"
    line = f"{head}  {_clip(row.get('prompt') or '', 40)} → {_clip(answer, 50)}"
    if row.get("shadow_of"):
        line = f"{line}  [shadow {row.get('shadow_name') or ''}]"
    elif row.get("shadows"):
        line = f"{line}  [{row['shadows']} shadow{'s' if row['shadows'] != 1 else ''}]"
    return line


def pager_text(page: Page) -> str:
    """``21–40 of 134 · page 2/7`` (``no transactions`` when nothing matches)."""
    if not page.total:
        return "no transactions match"
    last = min(page.offset + page.limit, page.total)
    return (
        f"{page.offset + 1}–{last} of {page.total} transactions · page {page.number}/{page.pages}"
    )


def empty_html(message: str) -> str:
    return (
        f'<div class="luthien-browse-empty" style="color:#777;padding:6px">{escape(message)}</div>'
    )


def _meta_html(row: dict[str, Any]) -> str:
    items = [
        ("transaction", row.get("transaction_id")),
        ("started", _when(row.get("started_at"))),
        ("status", row.get("status")),
        ("model", row.get("model")),
        ("policy", row.get("policy_class")),
        ("api", row.get("api")),
        ("streaming", row.get("streaming")),
    ]
    if row.get("shadow_of"):
        items += [("shadow of", row.get("shadow_of")), ("shadow", row.get("shadow_name"))]
        if row.get("shadow_dropped"):
            items.append(("chunks it never saw", row.get("shadow_dropped")))
    cells = "".join(
        f"<span style='margin-right:12px'><b>{escape(k)}</b> {escape(str(v))}</span>"
        for k, v in items
        if v is not None and v != ""
    )
    return f'<div class="luthien-browse-meta" style="font:12px sans-serif">{cells}</div>'


def _output(trace: TransactionTrace) -> str:
    return stream_text(trace.egress) or trace.text


def shadows_html(
    live: tuple[dict[str, Any], TransactionTrace],
    shadows: list[tuple[dict[str, Any], TransactionTrace]],
) -> str:
    """The live output beside each shadow's output, each shadow with its word diff
    from the live output (what the candidate would have changed for the user)."""
    live_row, live_trace = live
    live_text = _output(live_trace)
    columns = [
        _column(
            f"live · {short_policy(live_row.get('policy_class'))} · {live_row.get('status')}",
            pane_html(live_text, "luthien-live-output"),
            "luthien-live",
        )
    ]
    for row, trace in shadows:
        text = _output(trace)
        same = text == live_text and row.get("status") == live_row.get("status")
        badge = "same as live" if same else "differs from live"
        title = (
            f"shadow {row.get('shadow_name') or ''} · {short_policy(row.get('policy_class'))} · "
            f"{row.get('status')} · {badge}"
        )
        if row.get("shadow_dropped"):
            title += f" · {row['shadow_dropped']} chunks dropped"
        body = pane_html(text, "luthien-shadow-output")
        if text != live_text:
            body += diff_html(live_text, text, "inline")
        columns.append(_column(title, body, "luthien-shadow"))
    return (
        '<div class="luthien-live-vs-shadow" style="display:flex;gap:6px">'
        + "".join(columns)
        + "</div>"
    )


def _column(title: str, body: str, css: str) -> str:
    return f'<div class="{css}" style="flex:1;min-width:0"><b>{escape(title)}</b>{body}</div>'


def detail_html(
    row: dict[str, Any],
    trace: TransactionTrace,
    related: list[tuple[dict[str, Any], TransactionTrace]] | None = None,
) -> str:
    """One recorded transaction: what it was, the three views of a notebook run (raw vs
    transformed, hook timeline, diff) and, when it has shadows or is one, live vs
    shadow outputs side by side. ``related``: the live transaction first, then its
    shadows (as ``_browse_query.related`` lists them), with their traces."""
    parts = ['<div class="luthien-browse-detail">', _meta_html(row)]
    if related:
        live, shadows = related[0], related[1:]
        parts.append(_SECTION.format("live vs shadow"))
        parts.append(shadows_html(live, shadows))
    parts.append(_SECTION.format("raw vs transformed"))
    parts.append(run_html(trace))  # the streams, the hook timeline, the diff
    parts.append("</div>")
    return "".join(parts)
