"""The OpenAI Chat Completions dialect: ``POST /v1/chat/completions``.

Errors come in OpenAI's format (see ``_errors``); an error after the stream started
is sent as a last ``data: {"error": ...}`` event.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import Request as HTTPRequest
from fastapi.responses import Response
from pydantic import ValidationError

from luthien_lab.gateway._errors import GatewayError, classify, error_body, error_json
from luthien_lab.gateway._plumbing import json_response
from luthien_lab.gateway._sse import DONE, SSEResponse, first_chunk, sse_chunk, sse_data
from luthien_lab.request import Request

if TYPE_CHECKING:
    from fastapi import FastAPI

    from luthien_lab.gateway._plumbing import Gateway

__all__ = ["OPENAI_REQUEST_FIELDS", "add_chat_routes", "openai_error_response", "to_request"]

_log = logging.getLogger("luthien_lab.gateway")

# What a client may send. Anything else is refused (as OpenAI does): litellm treats
# fields like api_base, api_key or mock_response as instructions, and a client must
# not be able to redirect the gateway's upstream or its credentials.
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


def openai_error_response(error: GatewayError) -> Response:
    headers = {"www-authenticate": "Bearer"} if error.status == 401 else None
    return json_response(error_json(error), error.status, headers)


def to_request(body: dict[str, Any], gateway: Gateway) -> Request:
    unknown = sorted(set(body) - OPENAI_REQUEST_FIELDS)
    if unknown:
        raise GatewayError(
            400,
            f"Unrecognized request argument supplied: {', '.join(unknown)}",
            param=unknown[0],
            code="unknown_parameter",
        )
    model = body.get("model")
    if isinstance(model, str) and model:
        body["model"] = gateway.upstream_model(model)
    try:
        return Request(**body)
    except ValidationError as error:
        problem = error.errors()[0]
        param = ".".join(str(p) for p in problem["loc"]) or None
        raise GatewayError(
            400, f"invalid request: {param}: {problem['msg']}", param=param
        ) from None


async def _complete(gateway: Gateway, request: Request, tid: str) -> Response:
    response = await gateway.orchestrator.process_full_response(request, tid)
    return json_response(
        response.model_dump_json(exclude_none=True).encode(),
        headers={"x-luthien-transaction-id": tid},
    )


async def _stream(gateway: Gateway, request: Request, tid: str) -> Response:
    chunks = gateway.orchestrator.process_streaming_response(request, tid)
    first = await first_chunk(chunks)
    return SSEResponse(_events(chunks, first), [(b"x-luthien-transaction-id", tid.encode())])


async def _events(chunks: AsyncIterator[Any], first: Any) -> AsyncIterator[bytes]:
    try:
        if first is not None:
            yield sse_chunk(first)
            async for chunk in chunks:
                yield sse_chunk(chunk)
        yield DONE
    except Exception as error:
        failure = classify(error)
        _log.warning("stream failed after it started: %s", failure.message)
        yield sse_data(error_body(failure.message, failure.type, failure.code, failure.param))
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


async def handle_chat(gateway: Gateway, http: HTTPRequest) -> Response:
    """``POST /v1/chat/completions``."""
    try:
        gateway.check_key(http)
        request = to_request(await gateway.read_body(http), gateway)
        tid = uuid.uuid4().hex
        if request.stream:
            return await _stream(gateway, request, tid)
        return await _complete(gateway, request, tid)
    except Exception as error:
        failure = classify(error)
        if failure.status >= 500:
            _log.warning("request failed: %s", failure.message)
        return openai_error_response(failure)


def add_chat_routes(app: FastAPI, gateway: Gateway) -> None:
    """Register the Chat Completions dialect's routes on ``app``."""

    async def chat_completions(http: HTTPRequest) -> Response:
        return await handle_chat(gateway, http)

    app.add_api_route("/v1/chat/completions", chat_completions, methods=["POST"])
