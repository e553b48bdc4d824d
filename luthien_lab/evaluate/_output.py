"""What a response amounts to (:class:`Output`), read from response objects, from the
chunks a run sent, or from the JSON a store holds.

Evaluation compares outputs for every (case, policy): reading them must cost little
next to the run itself, so chunk streams are summarised directly (text, tool calls,
finish reason) rather than rebuilt into a full response object first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from luthien_lab.streaming.fields import NO_CHOICES, field_of, read_chunk, read_delta

__all__ = [
    "Output",
    "Summary",
    "calls_json",
    "output_of",
    "summarize_chunk_dicts",
    "summarize_chunks",
    "summarize_response_dict",
    "summary_of_response",
    "tool_calls_json",
]

# (id, name, arguments) of each tool call, in index order.
Calls = tuple[tuple[Any, str, str], ...]


@dataclass(frozen=True)
class Output:
    """What a response amounts to: text, tool calls (name, arguments), finish reason,
    and the error type when the run failed. Equal outputs mean "the user saw the same"."""

    text: str
    tool_calls: tuple[tuple[str, str], ...]
    finish_reason: str | None
    error: str | None = None

    def describe(self) -> str:
        if self.error:
            return f"error {self.error}"
        calls = ", ".join(f"{name}({args})" for name, args in self.tool_calls)
        return f"text={self.text!r} tool_calls=[{calls}] finish={self.finish_reason}"


@dataclass(frozen=True)
class Summary:
    """Text, tool calls with their ids, finish reason: an :class:`Output` plus ids."""

    text: str
    calls: Calls
    finish_reason: str | None

    def output(self, error: BaseException | None = None) -> Output:
        err = type(error).__name__ if error is not None else None
        pairs = tuple((name, args) for _id, name, args in self.calls)
        return Output(self.text, pairs, self.finish_reason, err)


EMPTY = Summary("", (), None)


def _merge(
    texts: list[str], tools: dict[int, list[Any]], finish: str | None, streamed: bool
) -> Summary:
    calls = tuple(
        (slot[0] or f"call_{index}", slot[1] or "", "".join(slot[2]))
        for index, slot in sorted(tools.items())
    )
    # As ``reconstruct_full_response``: a stream with no finish reason finished ("stop").
    return Summary("".join(texts), calls, finish or ("stop" if streamed else None))


def summarize_chunks(chunks: Iterable[Any]) -> Summary:
    """The summary of stream chunk objects (litellm or lite), as the response
    ``reconstruct_full_response`` would build from them reads."""
    texts: list[str] = []
    tools: dict[int, list[Any]] = {}
    finish = None
    seen = False
    for chunk in chunks:
        seen = True
        _usage, delta, reason = read_chunk(chunk)
        if delta is NO_CHOICES:
            continue
        if delta is not None:
            _thinking, text, calls = read_delta(delta)
            if text:
                texts.append(text)
            for call in calls or ():
                index = field_of(call, "index")
                slot = tools.setdefault(
                    index if index is not None else len(tools), [None, None, []]
                )
                call_id = field_of(call, "id")
                if call_id:
                    slot[0] = call_id
                function = field_of(call, "function")
                if function is not None:
                    name = field_of(function, "name")
                    if name:
                        slot[1] = name
                    arguments = field_of(function, "arguments")
                    if arguments:
                        slot[2].append(arguments)
        if reason:
            finish = reason
    return _merge(texts, tools, finish, seen) if seen else EMPTY


def summarize_chunk_dicts(chunks: Iterable[Mapping[str, Any]]) -> Summary:
    """:func:`summarize_chunks` for chunks as JSON dicts (no objects built)."""
    texts: list[str] = []
    tools: dict[int, list[Any]] = {}
    finish = None
    seen = False
    for chunk in chunks:
        seen = True
        choices = chunk.get("choices")
        if not choices:
            continue
        choice = choices[0]
        delta = choice.get("delta") or {}
        text = delta.get("content")
        if text:
            texts.append(text)
        for call in delta.get("tool_calls") or ():
            index = call.get("index")
            slot = tools.setdefault(index if index is not None else len(tools), [None, None, []])
            if call.get("id"):
                slot[0] = call["id"]
            function = call.get("function") or {}
            if function.get("name"):
                slot[1] = function["name"]
            if function.get("arguments"):
                slot[2].append(function["arguments"])
        if choice.get("finish_reason"):
            finish = choice["finish_reason"]
    return _merge(texts, tools, finish, seen) if seen else EMPTY


def summarize_response_dict(response: Mapping[str, Any] | None) -> Summary:
    """The summary of a full response as a JSON dict (chat completion shape)."""
    if not response or not response.get("choices"):
        return EMPTY
    choice = response["choices"][0]
    message = choice.get("message") or {}
    calls = tuple(
        (
            call.get("id") or f"call_{n}",
            (call.get("function") or {}).get("name") or "",
            (call.get("function") or {}).get("arguments") or "",
        )
        for n, call in enumerate(message.get("tool_calls") or ())
    )
    return Summary(message.get("content") or "", calls, choice.get("finish_reason"))


def summary_of_response(response: Any) -> Summary:
    if response is None or not getattr(response, "choices", None):
        return EMPTY
    choice = response.choices[0]
    message = choice.message
    calls = tuple(
        (call.id, call.function.name or "", call.function.arguments or "")
        for call in (message.tool_calls or [])
    )
    return Summary(message.content or "", calls, choice.finish_reason)


def output_of(response: Any, error: BaseException | None = None) -> Output:
    """The :class:`Output` of a ``ModelResponse`` (litellm or lite; None: empty)."""
    return summary_of_response(response).output(error)


def calls_json(calls: Calls) -> str:
    """Tool calls as JSON: ``[{"id", "name", "arguments"}]``."""
    return json.dumps(
        [{"id": i, "name": n, "arguments": a} for i, n, a in calls], ensure_ascii=False
    )


def tool_calls_json(response: Any) -> str:
    """Tool calls of a response as JSON: ``[{"id", "name", "arguments"}]``."""
    return calls_json(summary_of_response(response).calls)
