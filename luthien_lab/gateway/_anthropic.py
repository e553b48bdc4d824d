"""The Anthropic Messages dialect: ``POST /v1/messages`` (``?beta=true`` too) and
``POST /v1/messages/count_tokens``.

With an Anthropic upstream the request goes natively (``_wire``): the policy sees
the request in the common form (:func:`native_view`), and whatever it leaves alone
reaches the upstream, and comes back to the client, exactly as sent. With an
OpenAI-protocol upstream the request is translated (:func:`openai_request`) and the
answer rebuilt. Errors use Anthropic's format ``{"type": "error", "error": {"type",
"message"}}``; an upstream's own error body is passed on as it came; an error after
the stream started is sent as an ``event: error`` SSE event.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from fastapi import Request as HTTPRequest
from fastapi.responses import Response

from luthien_lab._ids import new_id
from luthien_lab.errors import UpstreamError
from luthien_lab.gateway._anthropic_checks import check_body
from luthien_lab.gateway._anthropic_message import to_anthropic_message
from luthien_lab.gateway._anthropic_request import native_view
from luthien_lab.gateway._anthropic_stream import AnthropicStreamWriter, sse_event
from luthien_lab.gateway._anthropic_translate import openai_request
from luthien_lab.gateway._errors import classify
from luthien_lab.gateway._native_http import NativeUpstreamError
from luthien_lab.gateway._plumbing import WIRE_API, forwarded_headers, json_response, make_request
from luthien_lab.gateway._sse import (
    ClientDisconnected,
    SSEResponse,
    start_stream,
    unless_disconnected,
    write_events,
)
from luthien_lab.gateway._wire import bind_wire
from luthien_lab.provider._protocol import protocol_for_model
from luthien_lab.request import Request

if TYPE_CHECKING:
    from fastapi import FastAPI

    from luthien_lab.gateway._plumbing import Gateway

__all__ = ["add_messages_routes", "anthropic_error", "error_type", "to_request"]

_log = logging.getLogger("luthien_lab.gateway")

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}

# Headers the upstream gets as the client sent them, besides every ``anthropic-*``:
# the local provider's test hooks.
_FORWARDED = ("x-luthien-script", "x-luthien-fault")


def error_type(status: int) -> str:
    return _ERROR_TYPES.get(status, "api_error")


def anthropic_error(error: BaseException) -> tuple[int, dict[str, Any] | bytes]:
    """``(status, body)`` of Anthropic's error format for any pipeline exception; an
    Anthropic upstream's own error body is returned as it came."""
    status = error.status_code if isinstance(error, NativeUpstreamError) else None
    if isinstance(error, NativeUpstreamError) and status is not None and 400 <= status < 600:
        try:
            native = json.loads(error.body)
        except ValueError:
            native = None
        if isinstance(native, dict) and native.get("type") == "error":
            return status, error.body
    failure = classify(error)
    status = failure.status
    if isinstance(error, UpstreamError) and error.status_code in (503, 529):
        status = 529  # Anthropic's "overloaded": clients retry it with backoff
    return status, {
        "type": "error",
        "error": {"type": error_type(status), "message": failure.message},
    }


def _forwarded_headers(http: HTTPRequest, gateway: Gateway) -> dict[str, str]:
    return forwarded_headers(
        http, gateway, ("anthropic-",), _FORWARDED, ("x-api-key", "authorization")
    )


def to_request(body: dict[str, Any], gateway: Gateway, http: HTTPRequest | None = None) -> Request:
    """The policy's :class:`Request` for an Anthropic Messages ``body`` (400 on a bad
    one); natively bound to the client's body when the upstream speaks Messages."""
    check_body(body)
    target = gateway.upstream_model(body["model"])
    if not gateway.native("anthropic", target):
        keep_cache = protocol_for_model(target) == "anthropic"
        return make_request(openai_request(body, target, keep_cache))
    view, extra = native_view(body, target)
    request = make_request(view)
    if http is not None:
        extra["query"] = http.url.query
    headers = _forwarded_headers(http, gateway) if http is not None else {}
    bind_wire(request, "anthropic", body, http, headers, extra)
    return request


# ----- responses -----


async def _stream(
    gateway: Gateway, http: HTTPRequest, request: Request, tid: str, model: str
) -> Response:
    chunks = gateway.orchestrator.process_streaming_response(request, tid)
    first, watch = await start_stream(http, chunks)
    writer = AnthropicStreamWriter(f"msg_{tid}", model, request._wire, anthropic_error)
    headers = [(b"x-luthien-transaction-id", tid.encode())]
    return SSEResponse(write_events(chunks, first, writer, sse_event, _log), headers, watch)


def _error_response(error: BaseException) -> Response:
    status, body = anthropic_error(error)
    if status >= 500:
        message = body if isinstance(body, bytes) else body["error"]["message"]
        _log.warning("request failed: %s", message)
    return json_response(body, status)


async def handle_messages(gateway: Gateway, http: HTTPRequest) -> Response:
    """``POST /v1/messages``."""
    try:
        gateway.check_key(http)
        body = await gateway.read_body(http)
        request = to_request(body, gateway, http)
        tid = new_id()
        if request.stream:
            return await _stream(gateway, http, request, tid, body["model"])
        response = await unless_disconnected(
            http, gateway.orchestrator.process_full_response(request, tid)
        )
        message = to_anthropic_message(response, f"msg_{tid}", body["model"], request._wire)
        return json_response(message, headers={"x-luthien-transaction-id": tid})
    except ClientDisconnected:
        return Response(status_code=499)  # nobody is listening; the transaction says cancelled
    except Exception as error:
        return _error_response(error)


def _estimate_tokens(body: dict[str, Any]) -> int:
    """A deterministic local estimate (about four characters a token) for upstreams
    that cannot count Anthropic requests themselves."""
    counted = {key: body.get(key) for key in ("system", "messages", "tools") if body.get(key)}
    return max(1, len(json.dumps(counted, ensure_ascii=False)) // 4)


async def handle_count_tokens(gateway: Gateway, http: HTTPRequest) -> Response:
    """``POST /v1/messages/count_tokens``: the upstream's count for an Anthropic
    upstream, a local estimate otherwise."""
    try:
        gateway.check_key(http)
        body = await gateway.read_body(http)
        check_body(body, count_tokens=True)
        target = gateway.upstream_model(body["model"])
        native = gateway.native_client("anthropic") if gateway.native("anthropic", target) else None
        if native is None:
            return json_response({"input_tokens": _estimate_tokens(body)})
        query = http.url.query
        path = "/v1/messages/count_tokens" + (f"?{query}" if query else "")
        sent = {**body, "model": target.split("/", 1)[-1]}
        status, raw, ctype = await native.forward_path(
            "POST", path, target, _forwarded_headers(http, gateway), sent
        )
        return Response(raw, status_code=status, media_type=ctype.split(";")[0])
    except ClientDisconnected:
        return Response(status_code=499)  # nobody is listening
    except Exception as error:
        return _error_response(error)


def add_messages_routes(app: FastAPI, gateway: Gateway) -> None:
    """Register the Messages dialect's routes on ``app``."""

    async def messages(http: HTTPRequest) -> Response:
        WIRE_API.set("messages")
        return await handle_messages(gateway, http)

    async def count_tokens(http: HTTPRequest) -> Response:
        return await handle_count_tokens(gateway, http)

    app.add_api_route("/v1/messages", messages, methods=["POST"])
    app.add_api_route("/v1/messages/count_tokens", count_tokens, methods=["POST"])
