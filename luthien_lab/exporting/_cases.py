"""Test cases for an exported policy: what went in, and what the policy made of it.

A case is a JSON-friendly dict::

    {"name": "case_1", "source": "notebook" | "store:<tx id>",
     "request": {...Request fields...},
     "chunks": [...ingress chunks, chunk.model_dump(mode="json")...],
     "expected": {"stream": <outcome>, "full": <outcome>}}

An outcome is :func:`summarize_response` of the final response (text, reasoning,
tool calls, finish reason) or ``{"error": "<exception class>"}``. Expected outcomes
are computed by replaying the case through the policy as the notebook defines it
(streaming and non-streaming separately: a policy that only overrides streaming
hooks answers differently in the two modes, and both are behaviour worth pinning).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from typing import Any

from luthien_lab.errors import ExportError, LuthienLabError

__all__ = [
    "cases_from_store",
    "normalize_cases",
    "replay_case",
    "summarize_response",
]

DEFAULT_MODEL = "test-model"

# The replays import litellm; offline, its remote cost-map fetch would stall for seconds.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def summarize_response(response: Any) -> dict[str, Any]:
    """The parts of a ``ModelResponse`` a client sees: text, reasoning, tool calls
    (name and arguments, parsed when JSON) and finish reason."""
    choice = response.choices[0]
    message = choice.message
    calls = []
    for call in message.tool_calls or []:
        arguments: Any = call.function.arguments or ""
        # Malformed arguments stay the text they are.
        with contextlib.suppress(ValueError):
            arguments = json.loads(arguments) if arguments else {}
        calls.append({"name": call.function.name, "arguments": arguments})
    return {
        "text": message.content or "",
        "reasoning": getattr(message, "reasoning_content", None) or "",
        "tool_calls": calls,
        "finish_reason": choice.finish_reason,
    }


def _jsonable_chunk(chunk: Any) -> dict[str, Any]:
    if isinstance(chunk, dict):
        return json.loads(json.dumps(chunk))
    if isinstance(chunk, str):
        return json.loads(chunk)
    return chunk.model_dump(mode="json")


def _chunks_for_response(response: Any) -> list[dict[str, Any]]:
    """Ingress chunks for a case given as a response: text or a ModelResponse (dict)."""
    from luthien_lab.clients._scripted import chunks_from_response, to_response
    from luthien_lab.streaming.chunks import create_chunk

    if isinstance(response, str):
        chunks = [
            create_chunk(None, role="assistant", content=""),
            create_chunk(None, content=response),
            create_chunk(None, finish_reason="stop"),
        ]
    else:
        chunks = chunks_from_response(to_response(response))
    return [_jsonable_chunk(c) for c in chunks]


def _request_dict(case: dict[str, Any], index: int) -> dict[str, Any]:
    request = case.get("request")
    if request is None and "prompt" in case:
        request = {
            "model": case.get("model", DEFAULT_MODEL),
            "messages": [{"role": "user", "content": str(case["prompt"])}],
        }
    if request is None:
        raise ExportError(
            f"case {index} has neither 'request' nor 'prompt'; give each case a request "
            '(a Request or dict) or a prompt ("prompt": "hello")'
        )
    if hasattr(request, "model_dump"):
        request = request.model_dump(mode="json", exclude_none=True)
    return json.loads(json.dumps(request))


def normalize_cases(cases: Iterable[Any]) -> list[dict[str, Any]]:
    """Cases as JSON dicts with ``request`` and ``chunks`` (see the module doc)."""
    result = []
    for index, case in enumerate(cases, start=1):
        if not isinstance(case, dict):
            raise ExportError(
                f"case {index} is a {type(case).__name__}; a case is a dict with "
                "'request'/'prompt' and 'chunks'/'response'"
            )
        if "chunks" in case:
            chunks = [_jsonable_chunk(c) for c in case["chunks"]]
        elif "response" in case:
            chunks = _chunks_for_response(case["response"])
        else:
            raise ExportError(
                f"case {index} has neither 'chunks' nor 'response'; give the provider's "
                "stream ('chunks': [...]) or answer ('response': 'text' or a response dict)"
            )
        normal: dict[str, Any] = {
            "name": str(case.get("name") or f"case_{index}"),
            "source": str(case.get("source", "notebook")),
            "request": _request_dict(case, index),
            "chunks": chunks,
        }
        if "recorded" in case:
            normal["recorded"] = case["recorded"]
        result.append(normal)
    names = [c["name"] for c in result]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ExportError(f"case names must be unique; repeated: {', '.join(duplicates)}")
    return result


async def _outcome(policy: Any, case: dict[str, Any], streaming: bool) -> dict[str, Any]:
    from luthien_lab.clients import ScriptedLLMClient
    from luthien_lab.orchestrator import PolicyOrchestrator
    from luthien_lab.request import Request
    from luthien_lab.streaming.reconstruct import reconstruct_full_response

    orchestrator = PolicyOrchestrator(policy, ScriptedLLMClient(chunks=case["chunks"]))
    request = Request(**case["request"])
    try:
        if streaming:
            chunks = [c async for c in orchestrator.process_streaming_response(request)]
            response = reconstruct_full_response(chunks)
        else:
            response = await orchestrator.process_full_response(request)
    except LuthienLabError as error:
        return {"error": type(error).__name__}
    return summarize_response(response)


async def replay_case(policy: Any, case: dict[str, Any]) -> dict[str, Any]:
    """``{"stream": outcome, "full": outcome}`` of one case through ``policy``."""
    return {
        "stream": await _outcome(policy, case, streaming=True),
        "full": await _outcome(policy, case, streaming=False),
    }


def cases_from_store(
    store: Any,
    *,
    transaction_ids: Iterable[str] | None = None,
    policy: str | None = None,
    limit: int | None = 50,
) -> list[dict[str, Any]]:
    """Cases from recorded transactions: by id, or every one of a policy class
    (its name, qualified or not), most recent first.

    Each case keeps the ingress chunks and, under ``recorded``, the outcome the
    notebook saw (``{"stream": ...}`` or ``{"full": ...}``), which the export checks
    against the policy it exports.
    """
    from luthien_lab.store import open_store

    if isinstance(store, str) or hasattr(store, "__fspath__"):
        store = open_store(store)
    if transaction_ids is None:
        if policy is None:
            raise ExportError("cases_from_store needs transaction_ids= or policy=")
        frame = store.transactions(policy=policy, limit=limit)
        frame = frame[frame["status"].isin(["ok", "blocked"])]
        transaction_ids = list(frame["transaction_id"])
        if not transaction_ids:
            raise ExportError(
                f"the store {store.path} has no finished transaction of policy {policy}; "
                "run the policy in the notebook with create_default_orchestrator first"
            )
    cases = []
    for tx_id in transaction_ids:
        cases.append(_store_case(store, str(tx_id)))
    return cases


def _store_case(store: Any, tx_id: str) -> dict[str, Any]:
    from luthien_lab.streaming.reconstruct import reconstruct_full_response

    try:
        pair = store.response_pair(tx_id)
    except KeyError as error:
        raise ExportError(
            f"transaction {tx_id!r} is not in the store {store.path}; "
            "list them with store.transactions()"
        ) from error
    request = pair.loc["original", "request"]
    chunks = store.chunks(tx_id)
    ingress = [json.loads(raw) for raw in chunks[chunks["direction"] == "ingress"]["raw"]]
    egress = [json.loads(raw) for raw in chunks[chunks["direction"] == "egress"]["raw"]]
    case: dict[str, Any] = {"name": f"tx_{tx_id}", "source": f"store:{tx_id}", "request": request}
    if ingress:
        from luthien_lab.clients._scripted import to_chunk

        case["chunks"] = ingress
        final = reconstruct_full_response([to_chunk(c) for c in egress])
        case["recorded"] = {"stream": summarize_response(final)}
    else:
        original = pair.loc["original", "response"]
        final = pair.loc["final", "response"]
        if original is None:
            raise ExportError(
                f"transaction {tx_id!r} recorded no response (status error?); "
                "pick a transaction that finished"
            )
        from luthien_lab.clients._scripted import to_response

        case["response"] = original
        if final is not None:
            case["recorded"] = {"full": summarize_response(to_response(final))}
    return case
