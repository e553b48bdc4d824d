"""``create_app``: the OpenAI-compatible gateway (FastAPI), one orchestrator per app.

``POST /v1/chat/completions`` (streaming and not, tools included) runs every request
through the policy; ``POST /v1/messages`` does the same for Anthropic clients
(``_anthropic``); ``GET /health``. Errors come in OpenAI's format (see
``_errors``); an error after the stream started is sent as a last
``data: {"error": ...}`` event.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi import Request as HTTPRequest
from fastapi.responses import Response
from pydantic import ValidationError

from luthien_lab.errors import ConfigError
from luthien_lab.gateway._anthropic import add_messages_route
from luthien_lab.gateway._errors import GatewayError, classify, error_body, error_json
from luthien_lab.gateway._sse import DONE, SSEResponse, first_chunk, sse_chunk, sse_data
from luthien_lab.orchestrator import PolicyOrchestrator
from luthien_lab.policies.base import policy_name
from luthien_lab.policy_config import GatewaySettings
from luthien_lab.request import Request

if TYPE_CHECKING:
    from luthien_lab.clients import LLMClient
    from luthien_lab.events import PipelineListener
    from luthien_lab.policies.base import Policy

__all__ = ["OPENAI_REQUEST_FIELDS", "Gateway", "create_app"]

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

_JSON = "application/json"


def _json_response(
    body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(content=body, status_code=status, media_type=_JSON, headers=headers)


def _error_response(error: GatewayError) -> Response:
    headers = {"www-authenticate": "Bearer"} if error.status == 401 else None
    return _json_response(error_json(error), error.status, headers)


class Gateway:
    """The state behind one app: settings, orchestrator, API key."""

    def __init__(
        self,
        policy: Policy,
        *,
        settings: GatewaySettings | None = None,
        llm_client: LLMClient | None = None,
        listeners: list[PipelineListener] | None = None,
        api_key: str | None = None,
    ) -> None:
        self.settings = settings = settings or GatewaySettings()
        upstream = settings.upstream
        key = (os.environ.get(upstream.api_key_env, "") if upstream.api_key_env else "") or ""
        if llm_client is None:
            llm_client = _upstream_client(upstream, key)
        self.orchestrator = PolicyOrchestrator(
            policy, llm_client, listeners=listeners or (), chunk_timeout=upstream.timeout
        )
        self.api_key = api_key
        self.prefix = upstream.provider or ("openai" if upstream.api_base else None)
        self.model_map = upstream.model_map
        self.max_bytes = settings.max_request_bytes

    # ----- request checks -----

    def check_key(self, request: HTTPRequest) -> None:
        if not self.api_key:
            return
        given = request.headers.get("x-api-key")
        if given is None:
            auth = request.headers.get("authorization", "")
            scheme, _, token = auth.partition(" ")
            given = token.strip() if scheme.lower() == "bearer" else None
        if not given:
            raise GatewayError(
                401,
                "missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'",
                "authentication_error",
                "missing_api_key",
            )
        if not hmac.compare_digest(given.encode(), self.api_key.encode()):
            raise GatewayError(
                401, "incorrect API key provided", "authentication_error", "invalid_api_key"
            )

    async def read_body(self, request: HTTPRequest) -> dict[str, Any]:
        limit = self.max_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise self._too_large(int(declared))
        parts: list[bytes] = []
        size = 0
        async for part in request.stream():
            size += len(part)
            if size > limit:
                raise self._too_large(size)
            parts.append(part)
        try:
            body = json.loads(b"".join(parts))
        except ValueError as error:
            raise GatewayError(400, f"request body is not valid JSON: {error}") from None
        if not isinstance(body, dict):
            raise GatewayError(
                400, f"request body must be a JSON object, got {type(body).__name__}"
            )
        return body

    def _too_large(self, size: int) -> GatewayError:
        return GatewayError(
            413,
            f"request body is {size} bytes, more than the gateway's limit of {self.max_bytes} "
            "(gateway.max_request_bytes)",
            "invalid_request_error",
            "request_too_large",
        )

    def to_request(self, body: dict[str, Any]) -> Request:
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
            model = self.model_map.get(model, model)
            if self.prefix and "/" not in model:
                model = f"{self.prefix}/{model}"
            body["model"] = model
        try:
            return Request(**body)
        except ValidationError as error:
            problem = error.errors()[0]
            param = ".".join(str(p) for p in problem["loc"]) or None
            raise GatewayError(
                400, f"invalid request: {param}: {problem['msg']}", param=param
            ) from None

    # ----- responses -----

    async def complete(self, request: Request, tid: str) -> Response:
        response = await self.orchestrator.process_full_response(request, tid)
        return _json_response(
            response.model_dump_json(exclude_none=True).encode(),
            headers={"x-luthien-transaction-id": tid},
        )

    async def stream(self, request: Request, tid: str) -> Response:
        chunks = self.orchestrator.process_streaming_response(request, tid)
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


def _upstream_client(upstream: Any, key: str) -> LLMClient:
    """The client ``gateway.upstream.client`` asks for. ``auto`` (the default): with an
    OpenAI-compatible ``api_base``, OpenAI-protocol models go through the lean HTTP
    client and the rest through litellm; with no ``api_base``, litellm alone."""
    from luthien_lab.clients import LiteLLMClient

    defaults: dict[str, Any] = {"max_retries": 0}
    if upstream.api_base:
        defaults["api_base"] = upstream.api_base
        defaults["api_key"] = key or "sk-none"
    if upstream.client == "litellm":
        return LiteLLMClient(**defaults)
    if not upstream.api_base:
        if upstream.client == "http":
            raise ConfigError("gateway.upstream.client 'http' needs gateway.upstream.api_base")
        return LiteLLMClient(**defaults)
    from luthien_lab.gateway._upstream import OpenAIHTTPClient, ProtocolRouter

    lean = OpenAIHTTPClient(upstream.api_base, key)
    if upstream.client == "http":
        return lean
    if upstream.provider not in (None, "openai"):
        return LiteLLMClient(**defaults)
    return ProtocolRouter(lean, LiteLLMClient(**defaults))


def create_app(
    policy: Policy,
    *,
    settings: GatewaySettings | None = None,
    llm_client: LLMClient | None = None,
    store: Any = None,
    listeners: list[PipelineListener] | None = None,
    api_key: str | None = None,
) -> FastAPI:
    """The gateway app for ``policy``.

    - ``settings``: the ``gateway:`` section (upstream, limits, API key env var);
    - ``llm_client``: default :class:`~luthien_lab.LiteLLMClient` (the configured
      upstream ``api_base``, else litellm's routing: the local provider offline);
    - ``store``: a path or ``Store`` to record every transaction to DuckDB (None: no
      recording); a store that cannot be opened is logged and skipped;
    - ``api_key``: required on every request when set (default: the value of the
      env var ``settings.api_key_env``, if any).
    """
    settings = settings or GatewaySettings()
    if api_key is None and settings.api_key_env:
        api_key = os.environ.get(settings.api_key_env) or None
    all_listeners = list(listeners or [])
    recorder = None
    if store is not None:
        try:
            from luthien_lab.store import DuckDBRecorder

            recorder = DuckDBRecorder(store)
            all_listeners.insert(0, recorder)
        except Exception as error:  # recording is optional: serve without it
            _log.warning("not recording: the store %r could not be opened: %s", store, error)
    gateway = Gateway(
        policy, settings=settings, llm_client=llm_client, listeners=all_listeners, api_key=api_key
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if recorder is not None:
            recorder.close()
        close = getattr(gateway.orchestrator.llm_client, "aclose", None)
        if close is not None:
            await close()

    app = FastAPI(
        title="luthien-lab gateway",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.gateway = gateway
    app.state.recorder = recorder
    name = policy_name(policy)

    @app.get("/health")
    async def health() -> Response:
        return _json_response(json.dumps({"status": "ok", "policy": name}).encode())

    @app.post("/v1/chat/completions")
    async def chat_completions(http: HTTPRequest) -> Response:
        try:
            gateway.check_key(http)
            request = gateway.to_request(await gateway.read_body(http))
            tid = uuid.uuid4().hex
            if request.stream:
                return await gateway.stream(request, tid)
            return await gateway.complete(request, tid)
        except Exception as error:
            failure = classify(error)
            if failure.status >= 500:
                _log.warning("request failed: %s", failure.message)
            return _error_response(failure)

    add_messages_route(app, gateway)  # POST /v1/messages: the Anthropic Messages API
    return app
