"""What every wire dialect of the gateway shares: the app's state (:class:`Gateway`),
the API key check, reading and validating a JSON body at the edge, model mapping,
and JSON responses. The dialects (``_openai_chat``, ``_anthropic``, ``_responses``)
are peers over this module; none imports another.
"""

from __future__ import annotations

import hmac
import json
import os
import re
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from fastapi import Request as HTTPRequest
from fastapi.responses import Response
from pydantic import ValidationError

from luthien_lab.events import PipelineListener, TransactionInfo
from luthien_lab.gateway._errors import GatewayError
from luthien_lab.gateway._native_http import SessionPool, load_json
from luthien_lab.gateway._settings import GatewaySettings
from luthien_lab.gateway._sse import ClientDisconnected
from luthien_lab.gateway._upstream import build_upstream
from luthien_lab.orchestrator import PolicyOrchestrator
from luthien_lab.policies.base import Policy
from luthien_lab.provider._protocol import protocol_for_model
from luthien_lab.request import Request

if TYPE_CHECKING:
    from luthien_lab.clients import LLMClient

__all__ = [
    "WIRE_API",
    "Gateway",
    "check_json",
    "forwarded_headers",
    "json_response",
    "make_request",
]

WIRE_API: ContextVar[str | None] = ContextVar("luthien_lab_wire_api", default=None)
"""The wire API of the request being served (``chat``, ``messages``, ``responses``):
each dialect's route sets it; every transaction it starts is tagged with it."""


class _ApiTag(PipelineListener):
    """Tags each transaction with the wire API that started it (``tags["api"]``)."""

    def transaction_started(self, info: TransactionInfo) -> None:
        api = WIRE_API.get()
        if api is not None:
            info.tags["api"] = api


_JSON = "application/json"
_SURROGATE_ESCAPE = re.compile(rb"\\[uU][dD][89a-fA-F]")


def json_response(
    body: bytes | Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    if not isinstance(body, bytes):
        body = json.dumps(body, ensure_ascii=False).encode()
    return Response(content=body, status_code=status, media_type=_JSON, headers=headers)


def make_request(fields: dict[str, Any]) -> Request:
    """The policy's :class:`Request` from a dialect's view (400 naming the field the
    model refuses)."""
    try:
        return Request(**fields)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise GatewayError(
            400, f"invalid request: {where}: {problem['msg']}", param=where or None
        ) from None


def forwarded_headers(
    http: HTTPRequest,
    gateway: Gateway,
    prefixes: tuple[str, ...],
    names: frozenset[str] | tuple[str, ...] = (),
    credentials: tuple[str, ...] = (),
) -> dict[str, str]:
    """The client headers the upstream gets as sent: those under ``prefixes``, the
    ``names``, and the ``credentials`` when the gateway requires no key of its own
    (then the client's key is meant for the upstream)."""
    headers = {
        name: value
        for name, value in http.headers.items()
        if name.startswith(prefixes) or name in names
    }
    if not gateway.api_key:
        for name in credentials:
            if name in http.headers:
                headers[name] = http.headers[name]
    return headers


def check_json(value: Any, max_depth: int, surrogates: bool = True) -> None:
    """400 for a body nested deeper than ``max_depth`` or (``surrogates``) holding a
    lone surrogate (valid JSON escapes, but no valid text: they break whatever writes
    it later)."""
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        node, depth, path = stack.pop()
        if depth > max_depth:
            raise GatewayError(
                400,
                f"request body is nested more than {max_depth} levels deep (at {path or 'the top'}; "
                "gateway.max_json_depth)",
                param=path or None,
                code="too_deep",
            )
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if isinstance(child, dict | list):
                if child:
                    stack.append((child, depth + 1, f"{path}.{key}" if path else str(key)))
            elif surrogates and isinstance(child, str) and _has_surrogate(child):
                where = f"{path}.{key}" if path else str(key)
                raise _surrogate(where)
            if surrogates and isinstance(key, str) and _has_surrogate(key):
                raise _surrogate(path or "the top")


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _surrogate(where: str) -> GatewayError:
    return GatewayError(
        400,
        f"{where}: the text holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not "
        "valid Unicode",
        param=where,
        code="invalid_unicode",
    )


class Gateway:
    """The state behind one app: settings, orchestrator, API key, native upstreams."""

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
        self.natives: dict[str, Any] = {}
        if llm_client is None:
            llm_client, self.natives = build_upstream(upstream, key)
        self.orchestrator = PolicyOrchestrator(
            policy,
            llm_client,
            listeners=[_ApiTag(), *(listeners or ())],
            chunk_timeout=upstream.timeout,
        )
        self.api_key = api_key
        # Whether policy code sees a request before it is sent upstream (on_request):
        # if not, nothing can change it, and the dialects keep no copy to compare.
        self.policy_sees_requests = type(policy).on_request is not Policy.on_request
        self.prefix = upstream.provider or ("openai" if upstream.api_base else None)
        self.model_map = upstream.model_map
        self.max_bytes = settings.max_request_bytes
        self.max_depth = settings.max_json_depth
        self.plain = SessionPool(max_connections=8)
        """Connections for requests that are not transactions (the upstream's model
        list), the gateway's own: closed with it (:meth:`aclose`)."""

    async def aclose(self) -> None:
        """Close the upstream clients' connections and the gateway's own."""
        close = getattr(self.orchestrator.llm_client, "aclose", None)
        if close is not None:
            await close()
        await self.plain.aclose()

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
        """The JSON object of the request body, checked at the edge (size, depth,
        lone surrogates): nothing malformed gets past this into a policy or the store.
        The raw bytes stay on ``request.state.raw_body``."""
        limit = self.max_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise self._too_large(int(declared))
        # ASGI's receive, read here rather than through Starlette's request.stream()
        # (an async generator per request); the body is cached as request.body()
        # returns it. A client that hangs up before its body is whole is nobody to
        # answer: ClientDisconnected (the routes answer 499), not an internal error.
        receive = request.receive
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise ClientDisconnected
            part = message.get("body", b"")
            size += len(part)
            if size > limit:
                raise self._too_large(size)
            parts.append(part)
            if not message.get("more_body", False):
                break
        raw = parts[0] if len(parts) == 1 else b"".join(parts)
        request._body = raw
        request.state.raw_body = raw
        try:
            body = load_json(raw)
        except RecursionError:
            raise GatewayError(
                400,
                f"request body is nested more than {self.max_depth} levels deep "
                "(gateway.max_json_depth)",
                code="too_deep",
            ) from None
        except ValueError as error:
            raise GatewayError(400, f"request body is not valid JSON: {error}") from None
        if not isinstance(body, dict):
            raise GatewayError(
                400, f"request body must be a JSON object, got {type(body).__name__}"
            )
        surrogates = _SURROGATE_ESCAPE.search(raw) is not None
        if surrogates or raw.count(b"{") + raw.count(b"[") > self.max_depth:
            check_json(body, self.max_depth, surrogates)
        return body

    def _too_large(self, size: int) -> GatewayError:
        return GatewayError(
            413,
            f"request body is {size} bytes, more than the gateway's limit of {self.max_bytes} "
            "(gateway.max_request_bytes)",
            "invalid_request_error",
            "request_too_large",
        )

    # ----- routing -----

    def upstream_model(self, model: str) -> str:
        """The model name the pipeline uses: the model map, then the provider prefix."""
        model = self.model_map.get(model, model)
        if self.prefix and "/" not in model:
            model = f"{self.prefix}/{model}"
        return model

    def native_client(self, api: str) -> Any:
        """The native upstream client of ``api`` (None when there is none)."""
        return self.natives.get(api)

    def native(self, api: str, model: str) -> bool:
        """Whether a request of the ``api`` dialect for (mapped) ``model`` goes to an
        upstream speaking that same API, sent natively (lossless)."""
        if api not in self.natives:
            return False
        if api == "anthropic":
            return protocol_for_model(model) == "anthropic"
        return protocol_for_model(model) == "openai"  # chat and responses
