"""Raw vs transformed: what the policy changed in the response (and in the request).

- text: word-level diff (``difflib`` over word and whitespace tokens), inline or side
  by side, deletions as ``<del>``, insertions as ``<ins>``;
- tool calls: matched by id (else by position), compared by name and parsed
  arguments (added / removed / changed keys); a call the policy dropped is marked
  *blocked*, one it made up *added*;
- refusals and blocked transactions are called out;
- request: the client's messages vs the messages the policy sent on.
"""

from __future__ import annotations

import difflib
import json
import re
from html import escape
from typing import Any

import ipywidgets

from luthien_lab.runs import TransactionTrace

__all__ = ["ResponseDiff", "compare_tool_calls", "diff_html", "word_diff"]

_TOKEN = re.compile(r"\s+|[^\s]+")
DEL_STYLE = "background:#fdd;color:#900;text-decoration:line-through"
INS_STYLE = "background:#dfd;color:#060;text-decoration:none"
_BOX = (
    "white-space:pre-wrap;font:12px monospace;border:1px solid #ddd;padding:6px;"
    "margin:2px;flex:1;min-width:0"
)


def word_diff(a: str, b: str) -> list[tuple[str, str, str]]:
    """``[(tag, a_text, b_text)]`` with tag ``equal``/``delete``/``insert``/``replace``."""
    left, right = _TOKEN.findall(a or ""), _TOKEN.findall(b or "")
    matcher = difflib.SequenceMatcher(a=left, b=right, autojunk=False)
    return [
        (tag, "".join(left[i1:i2]), "".join(right[j1:j2]))
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
    ]


def _del(text: str) -> str:
    return f'<del style="{DEL_STYLE}">{escape(text)}</del>' if text else ""


def _ins(text: str) -> str:
    return f'<ins style="{INS_STYLE}">{escape(text)}</ins>' if text else ""


def diff_html(a: str, b: str, mode: str = "side_by_side") -> str:
    """The word diff of ``a`` → ``b`` as HTML (``mode``: side_by_side or inline)."""
    if mode not in ("side_by_side", "inline"):
        raise ValueError(f"mode must be 'side_by_side' or 'inline', not {mode!r}")
    ops = word_diff(a, b)
    if mode == "inline":
        body = "".join(escape(x) if tag == "equal" else _del(x) + _ins(y) for tag, x, y in ops)
        return f'<div class="diff-inline" style="{_BOX}">{body}</div>'
    left = "".join(escape(x) if tag == "equal" else _del(x) for tag, x, _ in ops)
    right = "".join(escape(y) if tag == "equal" else _ins(y) for tag, _, y in ops)
    return (
        '<div class="diff-side" style="display:flex">'
        f'<div class="diff-raw" style="{_BOX}"><b>raw</b><br>{left}</div>'
        f'<div class="diff-final" style="{_BOX}"><b>transformed</b><br>{right}</div></div>'
    )


def _parse(arguments: str) -> Any:
    try:
        return json.loads(arguments) if arguments and arguments.strip() else {}
    except ValueError:
        return None


def compare_tool_calls(
    raw: list[dict[str, Any]], final: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each tool call, raw vs final: ``status`` (unchanged, changed, blocked, added),
    ``name``/``final_name``, and for changed arguments ``added``/``removed``/``changed``
    keys (``changed`` maps key → (raw, final))."""
    remaining = list(final)
    rows: list[dict[str, Any]] = []
    for call in raw:
        match = next(
            (f for f in remaining if call.get("id") and f.get("id") == call.get("id")), None
        )
        if match is None:
            match = next((f for f in remaining if f.get("name") == call.get("name")), None)
        if match is None:
            rows.append({"status": "blocked", "name": call.get("name"), "raw": call})
            continue
        remaining.remove(match)
        row: dict[str, Any] = {
            "name": call.get("name"),
            "final_name": match.get("name"),
            "raw": call,
            "final": match,
            "added": [],
            "removed": [],
            "changed": {},
        }
        a, b = _parse(call.get("arguments") or ""), _parse(match.get("arguments") or "")
        if isinstance(a, dict) and isinstance(b, dict):
            row["added"] = sorted(k for k in b if k not in a)
            row["removed"] = sorted(k for k in a if k not in b)
            row["changed"] = {k: (a[k], b[k]) for k in a if k in b and a[k] != b[k]}
            same_args = not (row["added"] or row["removed"] or row["changed"])
        else:
            same_args = (call.get("arguments") or "") == (match.get("arguments") or "")
            if not same_args:
                row["changed"] = {"(arguments)": (call.get("arguments"), match.get("arguments"))}
        unchanged = same_args and row["name"] == row["final_name"]
        row["status"] = "unchanged" if unchanged else "changed"
        rows.append(row)
    rows.extend({"status": "added", "name": f.get("name"), "final": f} for f in remaining)
    return rows


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    text = content if isinstance(content, str) else json.dumps(content, default=str)
    if message.get("tool_calls"):
        text += " " + json.dumps(message["tool_calls"], default=str)
    return text


def compare_requests(
    original: list[dict[str, Any]], final: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per message position: ``status`` (unchanged, changed, removed, added), role, texts."""
    rows = []
    for i in range(max(len(original), len(final))):
        a = original[i] if i < len(original) else None
        b = final[i] if i < len(final) else None
        if a is None or b is None:
            m: dict[str, Any] = b if a is None else a  # type: ignore[assignment]
            status = "added" if a is None else "removed"
            rows.append(
                {
                    "index": i,
                    "status": status,
                    "role": m.get("role"),
                    "raw": _message_text(m) if a else "",
                    "final": _message_text(m) if b else "",
                }
            )
            continue
        ta, tb = _message_text(a), _message_text(b)
        same = ta == tb and a.get("role") == b.get("role")
        rows.append(
            {
                "index": i,
                "status": "unchanged" if same else "changed",
                "role": b.get("role"),
                "raw": ta,
                "final": tb,
            }
        )
    return rows


def compare(trace: TransactionTrace) -> dict[str, Any]:
    """Everything the diff view shows, as plain data."""
    raw = trace.original_response or {}
    final = trace.final_response or {}
    blocked = [data.get("reason") for name, data in trace.events if name == "blocked"]
    return {
        "raw_text": trace.raw_text,
        "text": trace.text,
        "text_ops": word_diff(trace.raw_text, trace.text),
        "tool_calls": compare_tool_calls(
            raw.get("tool_calls") or [], final.get("tool_calls") or []
        ),
        "refusal": final.get("refusal"),
        "raw_refusal": raw.get("refusal"),
        "status": trace.status,
        "blocked_reasons": [r for r in blocked if r],
        "finish_reason": (raw.get("finish_reason"), final.get("finish_reason")),
        "request": compare_requests(trace.original_messages, trace.final_messages),
    }


_BADGE = {
    "unchanged": "#888",
    "changed": "#b7791f",
    "blocked": "#c53030",
    "added": "#2f855a",
    "removed": "#c53030",
}


def _badge(status: str) -> str:
    colour = _BADGE.get(status, "#555")
    return (
        f'<span class="badge badge-{status}" style="background:{colour};color:#fff;'
        f'border-radius:3px;padding:0 4px;font-size:11px">{status}</span>'
    )


def _tool_rows(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    items = []
    for row in rows:
        name = escape(str(row.get("name")))
        if row["status"] == "changed" and row.get("final_name") != row.get("name"):
            name += f" → {escape(str(row.get('final_name')))}"
        details = []
        details += [f"{_ins('+' + k)}" for k in row.get("added", [])]
        details += [f"{_del('-' + k)}" for k in row.get("removed", [])]
        for key, (a, b) in row.get("changed", {}).items():
            details.append(
                f"{escape(key)}: {_del(json.dumps(a, default=str))} "
                f"{_ins(json.dumps(b, default=str))}"
            )
        if row["status"] in ("blocked", "added"):
            call = row.get("raw") or row.get("final") or {}
            details.append(f"<code>{escape(str(call.get('arguments') or ''))}</code>")
        items.append(
            f'<li class="tool tool-{row["status"]}">{_badge(row["status"])} <b>{name}</b> '
            + " ".join(details)
            + "</li>"
        )
    return "<div><b>tool calls</b><ul>" + "".join(items) + "</ul></div>"


def render_diff(result: dict[str, Any], mode: str = "side_by_side") -> str:
    parts = ['<div class="luthien-diff" style="font:13px sans-serif">']
    for key, who in (("raw_refusal", "the model refused"), ("refusal", "refusal sent")):
        if result[key]:
            parts.append(
                f'<div class="refusal" style="color:#c53030"><b>{who}:</b> '
                f"{escape(str(result[key]))}</div>"
            )
    if result["status"] == "blocked" or result["blocked_reasons"]:
        reasons = "; ".join(escape(str(r)) for r in result["blocked_reasons"]) or "blocked"
        parts.append(f'<div class="blocked" style="color:#c53030"><b>blocked:</b> {reasons}</div>')
    raw_fr, final_fr = result["finish_reason"]
    if raw_fr != final_fr:
        parts.append(f"<div>finish reason: {_del(str(raw_fr))} {_ins(str(final_fr))}</div>")
    parts.append(diff_html(result["raw_text"], result["text"], mode))
    parts.append(_tool_rows(result["tool_calls"]))
    changed = [r for r in result["request"] if r["status"] != "unchanged"]
    if changed:
        parts.append("<div><b>request</b> (client → policy → provider)<ul>")
        for r in changed:
            body = (
                diff_html(r["raw"], r["final"], "inline")
                if r["status"] == "changed"
                else (escape(r["raw"] or r["final"]))
            )
            parts.append(
                f'<li class="msg msg-{r["status"]}">{_badge(r["status"])} '
                f"#{r['index']} {escape(str(r['role']))}: {body}</li>"
            )
        parts.append("</ul></div>")
    elif result["request"]:
        parts.append('<div style="color:#888">request unchanged by the policy</div>')
    parts.append("</div>")
    return "".join(parts)


class ResponseDiff(ipywidgets.HTML):
    """Raw vs transformed response (and request) of one transaction.

    ``ResponseDiff(trace, mode="side_by_side"|"inline")``;
    ``ResponseDiff.from_store(store, tx_id)`` for a recording; ``.result`` is the
    comparison as plain data.
    """

    def __init__(
        self, trace: TransactionTrace | None = None, *, mode: str = "side_by_side", **kw: Any
    ):
        super().__init__(**kw)
        self.mode = mode
        self.update(trace or TransactionTrace(""))

    def __repr__(self) -> str:
        statuses = [row["status"] for row in self.result["tool_calls"]]
        changed = sum(tag != "equal" for tag, _, _ in self.result["text_ops"])
        return f"<ResponseDiff text_changes={changed} tool_calls={statuses}>"

    @classmethod
    def from_store(cls, store: Any, transaction_id: str, **kw: Any) -> ResponseDiff:
        return cls(TransactionTrace.from_store(store, transaction_id), **kw)

    def update(self, trace: TransactionTrace | None = None) -> None:
        if trace is not None:
            self.trace = trace
        self.result = compare(self.trace)
        self.value = render_diff(self.result, self.mode)
