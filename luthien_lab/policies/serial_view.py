"""What each stage of a :class:`~luthien_lab.policies.serial.SerialPolicy` emitted,
from the ``stage_egress`` events it records, and a diff between any two stages.

    from luthien_lab.policies.serial_view import stage_summaries, stage_trace
    from luthien_lab.runs import TransactionTrace
    from luthien_lab.widgets import ResponseDiff

    trace = TransactionTrace.from_store(store, tx_id)      # or a TraceListener's trace
    stage_summaries(trace)            # [{"stage", "name", "text", "tool_calls", ...}, ...]
    ResponseDiff(stage_trace(trace, 0, 2))   # what stages 1 and 2 changed
    ResponseDiff(stage_trace(trace, "provider", "ShellRulesPolicy"))

Stages are given by index, by name, ``"provider"`` (-1: what the provider sent) or
``"final"`` (what the client got).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from luthien_lab.streaming.fields import NO_CHOICES, field_of, read_chunk, read_delta

if TYPE_CHECKING:
    from luthien_lab.policies._serial_run import Run

__all__ = [
    "event_lane",
    "lane_label",
    "response_summary",
    "stage_summaries",
    "stage_trace",
    "stream_egress_events",
    "timeline_lanes",
]

_SUMMARY_KEYS = ("text", "reasoning", "tool_calls", "finish_reason", "refusal")


def response_summary(response: Any) -> dict[str, Any]:
    """Text, reasoning, tool calls, finish reason and refusal of a ``ModelResponse``."""
    if response is None or not getattr(response, "choices", None):
        return {
            "text": "",
            "reasoning": "",
            "tool_calls": [],
            "finish_reason": None,
            "refusal": None,
        }
    choice = response.choices[0]
    message = choice.message
    return {
        "text": message.content or "",
        "reasoning": getattr(message, "reasoning_content", None) or "",
        "tool_calls": [
            {"id": c.id, "name": c.function.name or "", "arguments": c.function.arguments or ""}
            for c in message.tool_calls or []
        ],
        "finish_reason": choice.finish_reason,
        "refusal": getattr(message, "refusal", None),
    }


def _deltas(chunks: list[Any]) -> list[list[Any]]:
    out = []
    for chunk in chunks:
        _usage, delta, finish = read_chunk(chunk)
        if delta is NO_CHOICES or delta is None:
            out.append([None, None, None, finish])
            continue
        reasoning, content, calls = read_delta(delta)
        shown = None
        if calls:
            shown = [
                [field_of(c, "index"), field_of(field_of(c, "function"), "name"),
                 field_of(field_of(c, "function"), "arguments")]
                for c in calls
            ]  # fmt: skip
        out.append([content, reasoning, shown, finish])
    return out


def stream_egress_events(run: Run, record_chunks: bool) -> list[dict[str, Any]]:
    """One ``stage_egress`` event per stage at the end of a stream. A stage's egress
    was the next stage's ingress, so its summary is that stage's assembled state; the
    last stage's is the transaction's final response (not repeated here)."""
    events = []
    stages = run.stages
    for i, stage in enumerate(stages):
        data: dict[str, Any] = {
            "stage": i,
            "stage_name": stage.name,
            "stage_path": stage.obs.path,
            "chunks": stage.egress.count if stage.egress is not None else 0,
        }
        if i + 1 < len(stages):
            nxt = stages[i + 1].assembler
            assert nxt is not None
            state = nxt.state
            data.update(
                text=state.content,
                reasoning=state.thinking_block.content if state.thinking_block else "",
                tool_calls=[
                    {"id": b.id, "name": b.name, "arguments": b.arguments} for b in state.tool_calls
                ],
                finish_reason=state.finish_reason,
                final=False,
            )
            if record_chunks:
                data["deltas"] = _deltas(stage.egress.sent)
        else:
            data["final"] = True
        events.append(data)
    return events


def _events_of(source: Any) -> list[tuple[str, dict[str, Any]]]:
    events = getattr(source, "events", source)
    return [(name, data) for name, data in events]


def stage_summaries(source: Any, final_response: Any = None) -> list[dict[str, Any]]:
    """Per stage of the (outermost) chain: ``{"stage", "name", "text", "reasoning",
    "tool_calls", "finish_reason", "refusal", "chunks"}``. ``source``: a
    ``TransactionTrace`` (its final response completes the last stage) or a list of
    ``(event name, data)``."""
    if final_response is None:
        final_response = getattr(source, "final_response", None)
    out = []
    for name, data in _events_of(source):
        if name != "stage_egress" or "/" in str(data.get("stage_path", "")):
            continue
        summary = {"stage": data.get("stage"), "name": data.get("stage_name")}
        if data.get("final") and final_response is not None:
            final = (
                final_response
                if isinstance(final_response, dict)
                else response_summary(final_response)
            )
            summary.update({k: final.get(k) for k in _SUMMARY_KEYS})
        else:
            summary.update({k: data.get(k) for k in _SUMMARY_KEYS})
        summary["chunks"] = data.get("chunks")
        out.append(summary)
    return out


def _pick(summaries: list[dict[str, Any]], which: int | str, trace: Any) -> dict[str, Any]:
    if which in ("provider", -1):
        return dict(trace.original_response or {})
    if which == "final":
        return dict(trace.final_response or {})
    for s in summaries:
        if s["stage"] == which or s["name"] == which:
            return {k: s.get(k) for k in _SUMMARY_KEYS}
    known = ", ".join(f"{s['stage']}:{s['name']}" for s in summaries) or "none recorded"
    raise KeyError(f"no stage {which!r} in this transaction (stages: {known})")


def stage_trace(trace: Any, a: int | str, b: int | str) -> Any:
    """A copy of ``trace`` whose raw response is stage ``a``'s output and whose final
    response is stage ``b``'s: pass it to ``ResponseDiff`` to see what the stages in
    between changed."""
    summaries = stage_summaries(trace)
    out = copy.copy(trace)
    out.original_response = _pick(summaries, a, trace)
    out.final_response = _pick(summaries, b, trace)
    return out


# ----- the timeline's lanes (luthien_lab.widgets._timeline draws them) -----


def event_lane(name: str, data: dict[str, Any]) -> str | None:
    """The timeline lane of an event that says which ingress chunk it belongs to
    (``chunk_index``), else None."""
    index = data.get("chunk_index")
    if not isinstance(index, int) or isinstance(index, bool) or name == "stage_egress":
        return None
    path = data.get("stage_path")
    return f"{path}/event: {name}" if path else f"event: {name}"


def lane_label(lane: str) -> str:
    """A lane's label: a stage's lanes read ``[1:ShellRulesPolicy] on_tool_call_complete``."""
    path, slash, hook = lane.rpartition("/")
    return f"[{path}] {hook}" if slash else lane


def timeline_lanes(
    hooks: list[str], events: list[tuple[str, dict[str, Any]]], order: tuple[str, ...]
) -> tuple[list[str], list[tuple[str, int, int]], set[str]]:
    """(lanes, stage groups ``(label, first lane, last lane)``, the stages' hook names).

    The transaction's own hooks come first in pipeline ``order``, then its events;
    then, per stage of a ``SerialPolicy`` (hooks reported as ``"<i>:<name>/<hook>"``),
    that stage's hooks and events, as a group."""
    from luthien_lab.policies.serial import split_stage_hook

    def ordered(names: list[str]) -> list[str]:
        return [h for h in order if h in names] + [h for h in names if h not in order]

    top: list[str] = []
    staged: dict[str, list[str]] = {}
    names: set[str] = set()
    for hook in dict.fromkeys(hooks):
        split = split_stage_hook(hook)
        if split is None:
            top.append(hook)
        else:
            staged.setdefault(split[0], []).append(split[1])
            names.add(hook)
    top_events: list[str] = []
    for name, data in events:
        lane = event_lane(name, data)
        if lane is None:
            continue
        path = data.get("stage_path")
        if path:
            entries = staged.setdefault(path, [])
            if f"event: {name}" not in entries:
                entries.append(f"event: {name}")
        elif lane not in top_events:
            top_events.append(lane)
    lanes = ordered(top) + top_events
    groups: list[tuple[str, int, int]] = []
    for path in sorted(staged, key=lambda p: [int(x.split(":")[0]) for x in p.split("/")]):
        entries = staged[path]
        stage_hooks = ordered([h for h in entries if not h.startswith("event: ")])
        first = len(lanes)
        lanes += [
            f"{path}/{h}" for h in stage_hooks + [e for e in entries if e.startswith("event: ")]
        ]
        groups.append((f"stage {path}", first, len(lanes) - 1))
    return lanes, groups, names
