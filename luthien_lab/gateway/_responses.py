"""The OpenAI Responses dialect: ``POST /v1/responses`` (streaming and not).

Codex CLI and the OpenAI Agents SDK speak only this API. With a Responses-capable
upstream the request goes natively (``_wire``): the policy sees the request in the
common form (:func:`native_view`), and whatever it leaves alone reaches the upstream,
and comes back to the client, exactly as sent. With a Chat Completions upstream the
request is translated (:func:`chat_request`) and the answer rebuilt as Responses events
and objects. Which one: ``gateway.upstream.responses_api`` (``_upstream.build_upstream``).

Errors use OpenAI's format ``{"error": {"message", "type", "param", "code"}}``; a
client mistake is a 400 naming the field (``param``); an upstream's own error body is
passed on as it came; an error after the stream started ends it with a
``response.failed`` event.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from fastapi import Request as HTTPRequest
from fastapi.responses import Response

from luthien_lab._ids import new_id
from luthien_lab.gateway._errors import classify, error_json
from luthien_lab.gateway._native_http import NativeUpstreamError
from luthien_lab.gateway._plumbing import WIRE_API, forwarded_headers, json_response, make_request
from luthien_lab.gateway._responses_chat import chat_request
from luthien_lab.gateway._responses_checks import check_body
from luthien_lab.gateway._responses_object import to_response
from luthien_lab.gateway._responses_request import native_view
from luthien_lab.gateway._responses_stream import ResponsesStreamWriter, sse_event
from luthien_lab.gateway._sse import (
    ClientDisconnected,
    SSEResponse,
    start_stream,
    unless_disconnected,
    write_events,
)
from luthien_lab.gateway._wire import bind_wire
from luthien_lab.request import Request

if TYPE_CHECKING:
    from fastapi import FastAPI

    from luthien_lab.gateway._plumbing import Gateway

__all__ = ["add_responses_routes", "responses_error", "to_request"]

_log = logging.getLogger("luthien_lab.gateway")

# Headers the upstream gets as the client sent them, besides every ``openai-*`` and
# ``x-codex-*``: what Codex sends to tie requests to a session (prompt caching, tracing),
# and the local provider's test hooks.
_FORWARDED = frozenset(
    {"session-id", "thread-id", "x-client-request-id", "originator", "session_id",
     "conversation_id", "chatgpt-account-id", "x-luthien-script", "x-luthien-fault"}
)  # fmt: skip


def responses_error(error: BaseException) -> tuple[int, bytes]:
    """``(status, body)`` in OpenAI's error format for any pipeline exception; a
    Responses upstream's own error body is returned as it came."""
    if isinstance(error, NativeUpstreamError) and 400 <= (error.status_code or 0) < 600:
        try:
            native = json.loads(error.body)
        except ValueError:
            native = None
        if isinstance(native, dict) and isinstance(native.get("error"), dict):
            return error.status_code or 502, error.body
    failure = classify(error)
    return failure.status, error_json(failure)


def _forwarded_headers(http: HTTPRequest, gateway: Gateway) -> dict[str, str]:
    return forwarded_headers(http, gateway, ("openai-", "x-codex-"), _FORWARDED, ("authorization",))


def to_request(body: dict[str, Any], gateway: Gateway, http: HTTPRequest | None = None) -> Request:
    """The policy's :class:`Request` for a Responses ``body`` (400 on a bad one);
    natively bound to the client's body when the upstream speaks Responses."""
    check_body(body)
    target = gateway.upstream_model(body["model"])
    if not gateway.native("responses", target):
        return make_request(chat_request(body, target, gateway.prefix))
    view, extra = native_view(body, target)
    request = make_request(view)
    extra["prefix"] = gateway.prefix
    headers = _forwarded_headers(http, gateway) if http is not None else {}
    bind_wire(request, "responses", body, http, headers, extra)
    return request


# ----- responses -----


async def _stream(
    gateway: Gateway, http: HTTPRequest, request: Request, tid: str, body: dict[str, Any]
) -> Response:
    chunks = gateway.orchestrator.process_streaming_response(request, tid)
    first, watch = await start_stream(http, chunks)
    writer = ResponsesStreamWriter(f"resp_{tid}", body, request._wire)
    headers = [(b"x-luthien-transaction-id", tid.encode())]
    return SSEResponse(write_events(chunks, first, writer, sse_event, _log), headers, watch)


def _error_response(error: BaseException) -> Response:
    status, body = responses_error(error)
    if status >= 500:
        _log.warning("request failed: %s", body[:500].decode(errors="replace"))
    headers = {"www-authenticate": "Bearer"} if status == 401 else None
    return json_response(body, status, headers)


async def handle_responses(gateway: Gateway, http: HTTPRequest) -> Response:
    """``POST /v1/responses``."""
    try:
        gateway.check_key(http)
        body = await gateway.read_body(http)
        request = to_request(body, gateway, http)
        tid = new_id()
        if request.stream:
            return await _stream(gateway, http, request, tid, body)
        response = await unless_disconnected(
            http, gateway.orchestrator.process_full_response(request, tid)
        )
        obj = to_response(response, f"resp_{tid}", body, request._wire)
        return json_response(obj, headers={"x-luthien-transaction-id": tid})
    except ClientDisconnected:
        return Response(status_code=499)  # nobody is listening; the transaction says cancelled
    except Exception as error:
        return _error_response(error)


def add_responses_routes(app: FastAPI, gateway: Gateway) -> None:
    """Register the Responses dialect's routes on ``app``."""

    async def responses(http: HTTPRequest) -> Response:
        WIRE_API.set("responses")
        return await handle_responses(gateway, http)

    app.add_api_route("/v1/responses", responses, methods=["POST"])
