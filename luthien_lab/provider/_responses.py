"""OpenAI Responses API wire format (``POST /v1/responses``) for a :class:`ScriptedResponse`.

Pure functions like ``_openai`` and ``_anthropic``, plus the two pieces of request-side
state the Responses API has and Chat Completions does not: the input items (a string or a
list of typed items) and ``previous_response_id``, which continues a conversation the
provider answered before (kept in a :class:`ResponseStore`).

Shapes follow the ``openai`` SDK types in ``openai/types/responses/`` (``response.py``,
``response_output_item.py``, ``response_*_event.py``), which the SDK and Codex parse.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from luthien_lab.provider import _openai
from luthien_lab.provider._frames import Frame, sse
from luthien_lab.provider._prompts import text_of
from luthien_lab.provider._script import ScriptedResponse

__all__ = [
    "PATHS",
    "PreviousResponseNotFound",
    "ResponseStore",
    "conversation",
    "count_words",
    "error_body",
    "input_items",
    "last_user_prompt",
    "output_items",
    "render",
    "render_json",
    "render_stream",
    "request_echo",
]

PATHS = ("/v1/responses", "/responses")
ENCRYPTED_REASONING = "reasoning.encrypted_content"


# -- request side -------------------------------------------------------------------------
def input_items(value: Any) -> list[dict[str, Any]]:
    """``input`` as a list of items: a string is one user message (as the API reads it);
    anything that is not an item (not a dict) is dropped rather than rejected, so odd
    clients still get an answer."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, dict)]
    return []


def _text_of(content: Any) -> str:
    return text_of(content, ("input_text", "output_text", "text"))


def _is_message(item: Mapping[str, Any]) -> bool:
    # an "easy input message" has a role and no type; a full one has type "message"
    return item.get("type", "message") == "message" and "role" in item


def last_user_prompt(items: Any) -> tuple[str, bool]:
    """``(text of the last user message, whether the input ends on a tool result)`` for
    Responses input items: the Responses twin of :func:`_server.last_user_prompt`. A tool
    result here is a ``function_call_output`` item (``custom_tool_call_output`` too, which
    Codex sends for freeform tools)."""
    if isinstance(items, str):
        return items, False
    if not isinstance(items, list):
        return "", False
    last = items[-1] if items else None
    after_tool = isinstance(last, dict) and last.get("type") in (
        "function_call_output",
        "custom_tool_call_output",
    )
    for item in reversed(items):
        if isinstance(item, dict) and _is_message(item) and item.get("role") == "user":
            text = _text_of(item.get("content"))
            if text:
                return text, after_tool
    return "", after_tool


def count_words(items: list[dict[str, Any]], instructions: Any = None) -> int:
    """Whitespace words of every message and tool output plus ``instructions``: the
    default ``input_tokens`` (the same rough measure as the other protocols)."""
    words = len(_text_of(instructions).split()) if instructions else 0
    for item in items:
        if _is_message(item):
            words += len(_text_of(item.get("content")).split())
        elif item.get("type") in ("function_call_output", "custom_tool_call_output"):
            words += len(_text_of(item.get("output")).split())
    return words


class PreviousResponseNotFound(LookupError):
    """``previous_response_id`` names a response the provider does not keep."""

    def __init__(self, response_id: str) -> None:
        super().__init__(f"Previous response with id '{response_id}' not found.")
        self.response_id = response_id


class ResponseStore:
    """The conversations (input then output items) of the last ``limit`` stored responses,
    so a later request can continue one with ``previous_response_id``. The real API keeps
    responses for 30 days; a test session only ever refers back to recent ones, so the
    oldest are dropped to keep a long-running provider's memory bounded."""

    def __init__(self, limit: int = 1000) -> None:
        self.limit = limit
        self._items: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, response_id: object) -> bool:
        return response_id in self._items

    def get(self, response_id: str) -> list[dict[str, Any]] | None:
        with self._lock:
            return self._items.get(response_id)

    def put(self, response_id: str, items: list[dict[str, Any]]) -> None:
        with self._lock:
            self._items[response_id] = items
            self._items.move_to_end(response_id)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)


def conversation(body: Mapping[str, Any], store: ResponseStore) -> list[dict[str, Any]]:
    """The items a request continues: the kept conversation of ``previous_response_id``
    (if any), then its own ``input``. Raises :class:`PreviousResponseNotFound` for an id
    the store does not hold (the real API answers 400 ``previous_response_not_found``)."""
    items = input_items(body.get("input"))
    previous = body.get("previous_response_id")
    if not isinstance(previous, str) or not previous:
        return items
    history = store.get(previous)
    if history is None:
        raise PreviousResponseNotFound(previous)
    return [*history, *items]


def request_echo(body: Mapping[str, Any]) -> dict[str, Any]:
    """The request parameters a response object repeats, with the API's defaults for those
    the request left out (the real API echoes them on every response object)."""
    reasoning = body.get("reasoning")
    text = body.get("text")
    return {
        "background": bool(body.get("background", False)),
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {
            "effort": None,
            "summary": None,
            **(reasoning if isinstance(reasoning, dict) else {}),
        },
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": body.get("service_tier") or "default",
        "store": body.get("store", True) is not False,
        "temperature": body.get("temperature", 1.0),
        "text": {
            "format": {"type": "text"},
            "verbosity": "medium",
            **(text if isinstance(text, dict) else {}),
        },
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


# -- rendering ------------------------------------------------------------------------------
def _status(script: ScriptedResponse) -> tuple[str, dict[str, str] | None]:
    """``(status, incomplete_details)``: a cut answer (``length``) or a filtered one
    (``content_filter``) ends ``incomplete`` as the real API reports it."""
    reason = script.openai_finish_reason()
    if reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def _usage(script: ScriptedResponse, prompt_words: int, empty: bool) -> dict[str, Any]:
    usage = script.usage_for(prompt_words)
    output = 0 if empty else usage["completion_tokens"]
    # a scripted ``usage`` may say ``reasoning_tokens``; else the thinking's words count
    given = (script.usage or {}).get("reasoning_tokens")
    thinking_words = min(len(script.full_thinking().split()), output)
    reasoning = 0 if empty else int(given) if given is not None else thinking_words
    return {
        "input_tokens": usage["prompt_tokens"],
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": usage["prompt_tokens"] + output,
    }


def _suffix(response_id: str) -> str:
    return response_id.removeprefix("resp_")


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _has_message(script: ScriptedResponse) -> bool:
    # an answer with nothing but tool calls has no message; any other answer has one,
    # empty text included (the SDK's ``output_text`` is then "")
    return bool(script.full_text() or script.refusal is not None or not script.tool_calls)


def output_items(
    script: ScriptedResponse, *, response_id: str, include_encrypted: bool, empty: bool = False
) -> list[dict[str, Any]]:
    """The finished ``output`` items, in order: reasoning, message, function calls. Item
    ids are ``rs_`` / ``msg_`` / ``fc_`` + the response id's suffix + the output index."""
    if empty:
        return []
    status, _ = _status(script)
    suffix = _suffix(response_id)
    items: list[dict[str, Any]] = []
    if script.full_thinking():
        reasoning: dict[str, Any] = {
            "id": f"rs_{suffix}_{len(items)}",
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": script.full_thinking()}],
        }
        if include_encrypted:
            reasoning["encrypted_content"] = script.thinking_signature()
        items.append(reasoning)
    if _has_message(script):
        content: list[dict[str, Any]] = []
        if script.full_text() or script.refusal is None:
            content.append(_text_part(script.full_text()))
        if script.refusal is not None:
            content.append({"type": "refusal", "refusal": script.refusal})
        items.append(
            {
                "id": f"msg_{suffix}_{len(items)}",
                "type": "message",
                "status": "completed",
                "content": content,
                "role": "assistant",
            }
        )
    for i, call in enumerate(script.tool_calls):
        items.append(
            {
                "id": f"fc_{suffix}_{len(items)}",
                "type": "function_call",
                "status": "completed",
                "arguments": call.arguments_json(),
                "call_id": script.tool_call_id(i, "openai"),
                "name": call.name,
            }
        )
    if status == "incomplete" and items and items[-1]["type"] != "reasoning":
        items[-1]["status"] = "incomplete"  # the item being written when the answer was cut
    return items


def _response(
    *,
    response_id: str,
    model: str,
    created_at: int,
    status: str,
    incomplete_details: dict[str, str] | None,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    request_echo: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "completed_at": created_at if status == "completed" else None,
        "error": None,
        "incomplete_details": incomplete_details,
        **request_echo,
        "model": model,
        "output": output,
        "usage": usage,
    }


def render_json(
    script: ScriptedResponse,
    *,
    model: str,
    response_id: str,
    prompt_words: int,
    include_encrypted: bool,
    empty: bool = False,
    request_echo: Mapping[str, Any],
    created_at: int | None = None,
) -> dict[str, Any]:
    """The response object of a non-streaming ``POST /v1/responses``."""
    status, incomplete = _status(script)
    return _response(
        response_id=response_id,
        model=model,
        created_at=int(time.time()) if created_at is None else created_at,
        status=status,
        incomplete_details=incomplete,
        output=output_items(
            script, response_id=response_id, include_encrypted=include_encrypted, empty=empty
        ),
        usage=_usage(script, prompt_words, empty),
        request_echo=request_echo,
    )


def render_stream(
    script: ScriptedResponse,
    *,
    model: str,
    response_id: str,
    prompt_words: int,
    include_encrypted: bool,
    empty: bool = False,
    request_echo: Mapping[str, Any],
    created_at: int | None = None,
) -> list[Frame]:
    """The SSE events of a streaming ``POST /v1/responses``: ``response.created``,
    ``response.in_progress``, each output item (added, its parts and deltas, done), then
    ``response.completed`` (``response.incomplete`` for a cut answer) carrying the full
    response object. Every event has a ``sequence_number`` counting from 0; the deltas
    (and a function call's ``output_item.added``, which carries its name, as the other
    protocols count a tool call's head) are content frames for faults and offsets."""
    events: list[tuple[dict[str, Any], bool]] = []

    def ev(kind: str, content: bool = False, **payload: Any) -> None:
        events.append(({"type": kind, **payload}, content))

    status, incomplete = _status(script)
    created_at = int(time.time()) if created_at is None else created_at
    final = output_items(
        script, response_id=response_id, include_encrypted=include_encrypted, empty=empty
    )
    start = _response(
        response_id=response_id,
        model=model,
        created_at=created_at,
        status="in_progress",
        incomplete_details=None,
        output=[],
        usage=None,
        request_echo=request_echo,
    )
    ev("response.created", response=start)
    ev("response.in_progress", response=start)
    calls = iter(script.tool_calls)
    for index, item in enumerate(final):
        ids = {"item_id": item["id"], "output_index": index}
        if item["type"] == "reasoning":
            added = {k: v for k, v in item.items() if k != "summary"}
            ev("response.output_item.added", output_index=index, item={**added, "summary": []})
            empty_part = {"type": "summary_text", "text": ""}
            ev("response.reasoning_summary_part.added", **ids, summary_index=0, part=empty_part)
            for part in script.thinking_parts():
                ev(
                    "response.reasoning_summary_text.delta",
                    True,
                    **ids,
                    summary_index=0,
                    delta=part,
                )
            text = script.full_thinking()
            ev("response.reasoning_summary_text.done", **ids, summary_index=0, text=text)
            done_part = {"type": "summary_text", "text": text}
            ev("response.reasoning_summary_part.done", **ids, summary_index=0, part=done_part)
        elif item["type"] == "message":
            added = {**item, "status": "in_progress", "content": []}
            ev("response.output_item.added", output_index=index, item=added)
            for content_index, part in enumerate(item["content"]):
                at = {**ids, "content_index": content_index}
                if part["type"] == "output_text":
                    ev("response.content_part.added", **at, part=_text_part(""))
                    for delta in script.text_parts():
                        ev("response.output_text.delta", True, **at, delta=delta, logprobs=[])
                    ev("response.output_text.done", **at, text=part["text"], logprobs=[])
                else:
                    ev("response.content_part.added", **at, part={"type": "refusal", "refusal": ""})
                    for delta in script.refusal_parts():
                        ev("response.refusal.delta", True, **at, delta=delta)
                    ev("response.refusal.done", **at, refusal=part["refusal"])
                ev("response.content_part.done", **at, part=part)
        else:
            call = next(calls)  # function calls come last, in script order
            added = {**item, "status": "in_progress", "arguments": ""}
            ev("response.output_item.added", True, output_index=index, item=added)
            for frag in call.fragments(script.chunk_size):
                ev("response.function_call_arguments.delta", True, **ids, delta=frag)
            ev("response.function_call_arguments.done", **ids, arguments=item["arguments"])
        ev("response.output_item.done", output_index=index, item=item)
    end = _response(
        response_id=response_id,
        model=model,
        created_at=created_at,
        status=status,
        incomplete_details=incomplete,
        output=final,
        usage=_usage(script, prompt_words, empty),
        request_echo=request_echo,
    )
    ev("response.completed" if status == "completed" else "response.incomplete", response=end)
    frames = []
    for seq, (event, content) in enumerate(events):
        event["sequence_number"] = seq
        frames.append(Frame(sse(event, event=event["type"]), content))
    return frames


def error_body(
    status: int, message: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """An OpenAI error body (the Responses API uses the same envelope), with ``param`` and
    ``code`` set where the real API names them (``previous_response_not_found``)."""
    body = _openai.error_body(status, message)
    if param is not None:
        body["error"]["param"] = param
    if code is not None:
        body["error"]["code"] = code
    return body


def render(
    script: ScriptedResponse,
    body: Mapping[str, Any],
    items: list[dict[str, Any]],
    *,
    model: str,
    response_id: str,
    empty: bool,
    store: ResponseStore,
) -> dict[str, Any] | list[Frame]:
    """The answer to one ``POST /v1/responses``: :func:`render_json` or, when ``stream``
    is set, :func:`render_stream`. The conversation (``items`` then the output) is kept in
    ``store`` under ``response_id`` unless the request says ``store: false``, as the API
    keeps it for a later ``previous_response_id``. The server's only Responses hook."""
    options: dict[str, Any] = {
        "model": model,
        "response_id": response_id,
        "prompt_words": count_words(items, body.get("instructions")),
        "include_encrypted": ENCRYPTED_REASONING in (body.get("include") or []),
        "empty": empty,
        "request_echo": request_echo(body),
        "created_at": int(time.time()),
    }
    if body.get("store", True) is not False:
        output = output_items(script, response_id=response_id, include_encrypted=True, empty=empty)
        store.put(response_id, [*items, *output])
    if body.get("stream"):
        return render_stream(script, **options)
    return render_json(script, **options)
