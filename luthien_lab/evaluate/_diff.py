"""How a candidate's output differs from a reference (production, or the provider):
a readable unified diff of the text, then the tool-call, finish-reason and blocked
differences, one line each."""

from __future__ import annotations

import difflib

from luthien_lab.evaluate._output import Summary

__all__ = ["differs", "output_diff"]


def _call_line(call: tuple[object, str, str]) -> str:
    return f"{call[1]}({call[2]})"


def differs(reference: Summary, ref_blocked: bool, candidate: Summary, blocked: bool) -> bool:
    """Whether the user would have seen something else: text, tool calls (name and
    arguments; ids are the provider's), finish reason or blocked."""
    return (
        reference.text != candidate.text
        or [c[1:] for c in reference.calls] != [c[1:] for c in candidate.calls]
        or reference.finish_reason != candidate.finish_reason
        or ref_blocked != blocked
    )


def output_diff(
    reference: Summary,
    ref_blocked: bool,
    candidate: Summary,
    blocked: bool,
    *,
    labels: tuple[str, str] = ("production", "candidate"),
) -> str:
    """The differences as text ("" when there are none)."""
    out: list[str] = []
    if reference.text != candidate.text:
        out.extend(
            difflib.unified_diff(
                reference.text.splitlines(),
                candidate.text.splitlines(),
                fromfile=labels[0],
                tofile=labels[1],
                lineterm="",
            )
        )
    ref_calls = [_call_line(c) for c in reference.calls]
    new_calls = [_call_line(c) for c in candidate.calls]
    if ref_calls != new_calls:
        removed = [c for c in ref_calls if c not in new_calls]
        added = [c for c in new_calls if c not in ref_calls]
        out.append(
            f"tool calls: {len(ref_calls)} -> {len(new_calls)}"
            + "".join(f"\n- {c}" for c in removed)
            + "".join(f"\n+ {c}" for c in added)
        )
    if reference.finish_reason != candidate.finish_reason:
        out.append(f"finish_reason: {reference.finish_reason} -> {candidate.finish_reason}")
    if ref_blocked != blocked:
        out.append(f"blocked: {ref_blocked} -> {blocked}")
    return "\n".join(out)
