"""A stream's full response, built from the chunk columns the recorder extracted.

It is the same JSON that ``reconstruct_full_response`` gives from the chunks (tested on
synthetic and recorded streams), without reading every chunk a second time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from luthien_lab.clients._litellm import litellm_types
from luthien_lab.store._redact import to_plain
from luthien_lab.streaming.fields import NO_CHOICES, field_of, read_chunk
from luthien_lab.streaming.lite import is_lite

__all__ = ["last_finish_reason", "response_from_columns"]

_CONTENT, _REASONING, _TOOLS, _FINISH = 5, 6, 7, 8
_PROMPT, _COMPLETION, _TOTAL, _RAW = 9, 10, 11, 12


def _pick(column: list[Any], positions: Sequence[int] | None) -> list[Any]:
    if positions is None:
        return column
    if isinstance(positions, range) and positions.start == 0 and positions.step == 1:
        return column[: positions.stop]
    return [column[i] for i in positions]


def last_finish_reason(columns: list[list[Any]], positions: Sequence[int] | None) -> str | None:
    """The last finish reason among the chosen rows (all rows when ``positions`` is None)."""
    for finish in reversed(_pick(columns[_FINISH], positions)):
        if finish:
            return finish  # type: ignore[no-any-return]
    return None


def _usage_json(usage: Any) -> Any:
    """``usage`` serialised as a response's usage field (the chunk's own object dumps
    a few more null keys), so both ways of building a response give the same JSON.
    Only a litellm object needs litellm's holder (and then litellm is imported already:
    the object exists); a lightweight one or a dict dumps as a response would."""
    if getattr(usage, "__pydantic_extra__", False) is False or is_lite(usage):
        return to_plain(usage)
    holder = litellm_types().ModelResponse()
    holder.usage = usage
    return to_plain(holder).get("usage")


def response_from_columns(
    columns: list[list[Any]], chunks: list[Any], positions: Sequence[int] | None = None
) -> dict[str, Any] | None:
    """The full response of the stream made of rows ``positions`` (all rows when None)
    of ``columns``, which hold the values of ``chunks``.

    Of what a response is rebuilt from, only a refusal delta has no column; it can
    only sit in a chunk whose row needed ``raw_json``. None when one does (the caller
    then rebuilds from the chunks themselves), and None for no rows.
    """
    order = range(len(chunks)) if positions is None else positions
    if not order:
        return None
    raw = _pick(columns[_RAW], positions)
    if raw.count(None) != len(raw):
        for value, i in zip(raw, order, strict=True):
            if value is not None:
                delta = read_chunk(chunks[i])[1]
                if delta is not NO_CHOICES and delta is not None and field_of(delta, "refusal"):
                    return None
    first = order[0]
    # filter(None, ...) skips None and "" in C: most rows have no reasoning or tools.
    content = list(filter(None, _pick(columns[_CONTENT], positions)))
    reasoning = list(filter(None, _pick(columns[_REASONING], positions)))
    tools: dict[int, dict[str, Any]] = {}
    for calls in filter(None, _pick(columns[_TOOLS], positions)):
        for call in calls:
            index = call["index"] if call["index"] is not None else len(tools)
            slot = tools.setdefault(index, {"id": None, "name": None, "arguments": []})
            if call["id"]:
                slot["id"] = call["id"]
            if call["name"]:
                slot["name"] = call["name"]
            if call["arguments"]:
                slot["arguments"].append(call["arguments"])
    message: dict[str, Any] = {
        "content": "".join(content) if content else None,
        "role": "assistant",
        "tool_calls": [
            {
                "function": {"arguments": "".join(slot["arguments"]), "name": slot["name"] or ""},
                "id": slot["id"] or f"call_{index}",
                "type": "function",
            }
            for index, slot in sorted(tools.items())
        ]
        or None,
        "function_call": None,
    }
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    response: dict[str, Any] = {
        "id": columns[0][first],
        "created": columns[2][first],
        "model": columns[1][first],
        "object": "chat.completion",
        "choices": [
            {
                "finish_reason": last_finish_reason(columns, positions) or "stop",
                "index": 0,
                "message": message,
            }
        ],
    }
    prompt, completion, total = (
        _pick(columns[_PROMPT], positions),
        _pick(columns[_COMPLETION], positions),
        _pick(columns[_TOTAL], positions),
    )
    if len(order) * 3 == prompt.count(None) + completion.count(None) + total.count(None):
        return response
    for row in range(len(order) - 1, -1, -1):
        if prompt[row] is not None or completion[row] is not None or total[row] is not None:
            usage = read_chunk(chunks[order[row]])[0]
            response["usage"] = _usage_json(usage)  # the last usage seen
            break
    return response
