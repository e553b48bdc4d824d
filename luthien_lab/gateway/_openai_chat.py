"""The OpenAI Chat Completions dialect: ``POST /v1/chat/completions``.

In front of an OpenAI-compatible upstream (``gateway.upstream.api_base``) the request
goes natively (``_wire``): every field the policy did not change, unknown ones
included, reaches the upstream as the client sent it (the client's own bytes when it
changed nothing), and every chunk it passes through reaches the client as the
upstream's own SSE event. Errors come in OpenAI's format (see ``_errors``); an error
after the stream started is sent as a last ``data: {"error": ...}`` event.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import Request as HTTPRequest
from fastapi.responses import Response

from luthien_lab._ids import new_id
from luthien_lab.gateway._errors import GatewayError, classify, error_body, error_json
from luthien_lab.gateway._openai_checks import check_chat_body
from luthien_lab.gateway._plumbing import WIRE_API, forwarded_headers, json_response, make_request
from luthien_lab.gateway._sse import (
    DONE,
    ClientDisconnected,
    SSEResponse,
    sse_chunk,
    sse_data,
    start_stream,
    unless_disconnected,
)
from luthien_lab.gateway._wire import WireContext, bind_wire, wire_attr
from luthien_lab.request import Request
from luthien_lab.streaming.lazy import LazyChunk, lazy_origin, original, raw_fields

if TYPE_CHECKING:
    from fastapi import FastAPI

    from luthien_lab.gateway._plumbing import Gateway

__all__ = ["OPENAI_REQUEST_FIELDS", "add_chat_routes", "openai_error_response", "to_request"]

_log = logging.getLogger("luthien_lab.gateway")

# The fields the gateway knew before it passed unknown ones through (kept for code that
# imported it); the Chat Completions API itself takes more.
OPENAI_REQUEST_FIELDS = frozenset(
    {
        "model", "messages", "stream", "stream_options", "tools", "tool_choice",
        "parallel_tool_calls", "functions", "function_call", "temperature", "top_p", "n",
        "stop", "max_tokens", "max_completion_tokens", "presence_penalty",
        "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "user", "seed",
        "response_format", "reasoning_effort", "modalities", "audio", "prediction",
        "service_tier", "store", "metadata", "web_search_options", "verbosity",
    }
)  # fmt: skip
# Headers the upstream gets as the client sent them.
_FORWARDED_PREFIXES = ("openai-", "x-luthien-")


def openai_error_response(error: GatewayError) -> Response:
    headers = {"www-authenticate": "Bearer"} if error.status == 401 else None
    return json_response(error_json(error), error.status, headers)


def to_request(body: dict[str, Any], gateway: Gateway, http: HTTPRequest | None = None) -> Request:
    """The policy's :class:`Request` for a Chat Completions ``body`` (400 on a bad one);
    natively bound to the client's body when the upstream speaks Chat Completions."""
    check_chat_body(body)
    target = gateway.upstream_model(body["model"])
    request = make_request({**body, "model": target})
    if http is not None and gateway.native("chat", target):
        headers = forwarded_headers(http, gateway, _FORWARDED_PREFIXES)
        options = body.get("stream_options")
        usage = isinstance(options, dict) and options.get("include_usage") is True
        extra = {"client_usage": usage}
        bind_wire(
            request, "chat", body, http, headers, extra, snapshot=gateway.policy_sees_requests
        )
    return request


async def _complete(gateway: Gateway, http: HTTPRequest, request: Request, tid: str) -> Response:
    response = await unless_disconnected(
        http, gateway.orchestrator.process_full_response(request, tid)
    )
    wire: WireContext | None = wire_attr(request)
    if wire is not None and wire.response is not None and wire.response[0] is response:
        body = wire.response[1]  # the upstream's own bytes: the policy returned it as it was
    else:
        body = response.model_dump_json(exclude_none=True).encode()
    return json_response(body, headers={"x-luthien-transaction-id": tid})


async def _stream(gateway: Gateway, http: HTTPRequest, request: Request, tid: str) -> Response:
    # The egress chunks as the lists ready together: each list goes out as one write,
    # and costs one step of the iterators between here and the pipeline, not one per
    # chunk (a read of the upstream often holds every event of a short answer).
    batches = gateway.orchestrator.process_streaming_batches(request, tid)
    first, watch = await start_stream(http, batches)
    headers = [(b"x-luthien-transaction-id", tid.encode())]
    return SSEResponse(_events(batches, first, wire_attr(request)), headers, watch)


def _encode_all(batch: list[Any], wire: WireContext | None) -> bytes:
    """The SSE events of ``batch``: each chunk the policy passed through unchanged as
    the upstream's own event (``streaming.lazy.original``), any other one written
    from the chunk."""
    if wire is None:
        return b"".join([sse_chunk(chunk) for chunk in batch])
    usage = wire.extra["client_usage"]
    out = []
    for chunk in batch:
        # A lazy chunk's bytes read here, not through original(): one call fewer per
        # event, most of a stream's chunks.
        raw = lazy_origin(chunk) if type(chunk) is LazyChunk else original(chunk)
        # Skipped: the usage trailer the gateway asked for, the client did not.
        if raw is not None:
            if usage or raw_fields(chunk).get("choices"):  # not chunk.choices: no waking
                out.append(raw)
        elif usage or chunk.choices:
            out.append(sse_chunk(chunk))
    return b"".join(out)


async def _events(
    batches: AsyncIterator[list[Any]], first: list[Any] | None, wire: WireContext | None
) -> AsyncIterator[bytes]:
    try:
        if first is not None:
            data = _encode_all(first, wire)
            if data:
                yield data
            async for batch in batches:
                data = _encode_all(batch, wire)
                if data:
                    yield data
        yield DONE
    except Exception as error:
        failure = classify(error)
        _log.warning("stream failed after it started: %s", failure.message)
        yield sse_data(error_body(failure.message, failure.type, failure.code, failure.param))
    finally:
        await batches.aclose()  # type: ignore[attr-defined]


async def handle_chat(gateway: Gateway, http: HTTPRequest) -> Response:
    """``POST /v1/chat/completions``."""
    try:
        gateway.check_key(http)
        request = to_request(await gateway.read_body(http), gateway, http)
        tid = new_id()
        if request.stream:
            return await _stream(gateway, http, request, tid)
        return await _complete(gateway, http, request, tid)
    except ClientDisconnected:
        return Response(status_code=499)  # nobody is listening; the transaction says cancelled
    except Exception as error:
        failure = classify(error)
        if failure.status >= 500:
            _log.warning("request failed: %s", failure.message)
        return openai_error_response(failure)


def add_chat_routes(app: FastAPI, gateway: Gateway) -> None:
    """Register the Chat Completions dialect's routes on ``app``."""

    async def chat_completions(http: HTTPRequest) -> Response:
        WIRE_API.set("chat")
        return await handle_chat(gateway, http)

    app.add_api_route("/v1/chat/completions", chat_completions, methods=["POST"])
