"""``create_app``: the gateway (FastAPI), one orchestrator per app.

Routes: the Chat Completions dialect (``_openai_chat``), the Messages dialect
(``_anthropic``), the Responses dialect (``_responses``), ``GET /v1/models``
(``_models``) and ``GET /health``. Every error, 404 and 405 included, comes in the
format of the API its path belongs to.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi import Request as HTTPRequest
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from luthien_lab.gateway._anthropic import add_messages_routes, error_type
from luthien_lab.gateway._errors import GatewayError, classify
from luthien_lab.gateway._hot_routes import GatewayApp, install_hot_routes
from luthien_lab.gateway._models import list_models
from luthien_lab.gateway._openai_chat import add_chat_routes, openai_error_response
from luthien_lab.gateway._plumbing import Gateway, json_response
from luthien_lab.gateway._responses import add_responses_routes
from luthien_lab.gateway._settings import GatewaySettings
from luthien_lab.policies.base import policy_name

if TYPE_CHECKING:
    from luthien_lab.clients import LLMClient
    from luthien_lab.events import PipelineListener
    from luthien_lab.policies.base import Policy

__all__ = ["create_app"]

_log = logging.getLogger("luthien_lab.gateway")


def _is_anthropic(http: HTTPRequest) -> bool:
    path = http.url.path
    return path.startswith("/v1/messages") or (
        path.startswith("/v1/models") and "anthropic-version" in http.headers
    )


def _error_response(http: HTTPRequest, error: GatewayError) -> Response:
    if _is_anthropic(http):
        body = {
            "type": "error",
            "error": {"type": error_type(error.status), "message": error.message},
        }
        return json_response(body, error.status)
    return openai_error_response(error)


def _warm_up() -> None:
    """What would otherwise make the first request wait seconds: importing litellm
    (and its per-call cost bookkeeping, off)."""
    from luthien_lab.clients._litellm import import_litellm

    import_litellm()


def create_app(
    policy: Policy,
    *,
    settings: GatewaySettings | None = None,
    llm_client: LLMClient | None = None,
    store: Any = None,
    listeners: list[PipelineListener] | None = None,
    api_key: str | None = None,
    shadows: Any = None,
) -> FastAPI:
    """The gateway app for ``policy``.

    - ``settings``: the ``gateway:`` section (upstream, limits, API key env var);
    - ``llm_client``: default: the configured upstream (``gateway.upstream``), with
      Anthropic Messages requests sent natively to an Anthropic upstream;
    - ``store``: a path or ``Store`` to record every transaction to DuckDB (None: no
      recording); a store that cannot be opened raises :class:`StoreError` (the
      gateway never serves unrecorded traffic it was asked to record);
    - ``api_key``: required on every request when set (default: the value of the
      env var ``settings.api_key_env``, if any);
    - ``shadows``: shadow policies (``{name: policy}`` or a list; the config's
      ``shadow:``): each request's upstream answer also runs through each of them on
      its own thread, recorded to ``store`` linked to the live transaction, never sent
      (:class:`~luthien_lab.shadows.Shadows`).

    The app is ready (``/health`` answers) only once everything slow to import has
    been imported.
    """
    settings = settings or GatewaySettings()
    named_shadows: dict[str, Any] = {}
    if shadows:  # checked before anything is opened
        from luthien_lab.shadows import name_shadows

        named_shadows = dict(name_shadows(shadows))
    if api_key is None and settings.api_key_env:
        api_key = os.environ.get(settings.api_key_env) or None
    all_listeners = list(listeners or [])
    recorder = None
    if store is not None:
        from luthien_lab.errors import StoreError
        from luthien_lab.store import recorder_for

        try:
            recorder = recorder_for(store)
        except Exception as error:
            # Refuse to start: a gateway that seems to record but does not loses the
            # very traffic someone asked to keep.
            kind = type(error) if isinstance(error, StoreError) else StoreError
            raise kind(
                f"cannot record to the store {str(store)!r}: {error}. Fix the path or free "
                "the file, or run without recording: luthien-lab serve --no-record, "
                "gateway.store: null in the config, or create_app(..., store=None)"
            ) from error
        all_listeners.insert(0, recorder)
    shadow_set = None
    if named_shadows:
        from luthien_lab.shadows import Shadows

        shadow_set = Shadows(
            named_shadows,
            listeners=[recorder] if recorder is not None else [],
            buffer=settings.shadow_buffer,
            hook_timeout=settings.hook_timeout,
            hook_block_warning=settings.hook_block_warning,
            hold=True,
        )
        all_listeners.append(shadow_set)
    gateway = Gateway(
        policy, settings=settings, llm_client=llm_client, listeners=all_listeners, api_key=api_key
    )
    gateway.orchestrator.hook_timeout = settings.hook_timeout
    gateway.orchestrator.hook_block_warning = settings.hook_block_warning
    ready = asyncio.Event()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(_warm_up)
        ready.set()
        yield
        if shadow_set is not None:
            # Before the recorder closes: the shadows' last transactions go to it.
            await asyncio.to_thread(shadow_set.close, settings.shadow_grace)
        if recorder is not None:
            recorder.close()
        await gateway.aclose()

    app = GatewayApp(
        title="luthien-lab gateway",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.gateway = gateway
    if shadow_set is not None:
        # The shadows start on the transactions a request ended once its response is
        # sent: they then compute while the live path is free, not while it writes.
        app.after_response = shadow_set.release
    app.state.recorder = recorder
    app.state.shadows = shadow_set
    name = policy_name(policy)

    @app.exception_handler(HTTPException)
    async def http_error(http: HTTPRequest, error: HTTPException) -> Response:
        if error.status_code == 405:
            message = f"method {http.method} is not allowed on {http.url.path}"
        elif error.status_code == 404:
            message = f"no route {http.method} {http.url.path} on the luthien-lab gateway"
        else:
            message = str(error.detail)
        kind = "not_found_error" if error.status_code == 404 else "invalid_request_error"
        return _error_response(http, GatewayError(error.status_code, message, kind))

    @app.get("/health")
    async def health() -> Response:
        status = "ok" if ready.is_set() else "starting"
        return json_response({"status": status, "policy": name}, 200 if ready.is_set() else 503)

    async def models(http: HTTPRequest) -> Response:
        try:
            return await list_models(gateway, http, http.path_params.get("model_id"))
        except Exception as error:
            return _error_response(http, classify(error))

    app.add_api_route("/v1/models", models, methods=["GET"])
    app.add_api_route("/v1/models/{model_id:path}", models, methods=["GET"])
    add_chat_routes(app, gateway)
    add_messages_routes(app, gateway)
    add_responses_routes(app, gateway)
    install_hot_routes(app)
    return app
