"""``GatewayApp``: the API calls, served without FastAPI's per-request machinery.

Every request for an API call (chat completions, messages, count_tokens, responses)
went through FastAPI's routing (a regex per route), its dependency solving and its
exception-handling wrappers: ~13% of the gateway's CPU per streamed request.
``GatewayApp`` sends an exact ``POST`` on one of those paths straight to the route's
endpoint (which turns every failure into an error in its API's format itself); any
other request, lifespan included, goes on to the FastAPI app unchanged, so 404s,
405s, ``/health`` and ``/v1/models`` behave as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from fastapi import Request as HTTPRequest
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = ["HOT_PATHS", "GatewayApp", "install_hot_routes"]

Endpoint = Callable[[HTTPRequest], Awaitable[Response]]

HOT_PATHS = frozenset(
    {"/v1/chat/completions", "/v1/messages", "/v1/messages/count_tokens", "/v1/responses"}
)


class GatewayApp(FastAPI):
    """A FastAPI app that serves ``POST`` on its :data:`HOT_PATHS` routes itself, in
    front of FastAPI's middleware (its telemetry, body limit and error wrappers wrap
    every ``send``) and routing; every other request goes to FastAPI."""

    hot_endpoints: dict[str, Endpoint]
    # Called once each HTTP response is sent (or the request failed): what must wait
    # until the live path is done with a request (the shadow policies start then).
    after_response: Callable[[], None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._serve(scope, receive, send)
        finally:
            if self.after_response is not None and scope["type"] == "http":
                self.after_response()

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = getattr(self, "hot_endpoints", {}).get(scope["path"])
            if endpoint is not None:
                scope["app"] = self
                response = await endpoint(HTTPRequest(scope, receive, send))
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def install_hot_routes(app: GatewayApp) -> dict[str, Endpoint]:
    """Serve ``app``'s POST routes on :data:`HOT_PATHS` directly (call once every
    route is registered); returns the endpoints it took."""
    endpoints: dict[str, Endpoint] = {}
    for route in app.router.routes:
        if (
            isinstance(route, APIRoute)
            and route.path in HOT_PATHS
            and "POST" in (route.methods or ())
        ):
            endpoints[route.path] = route.endpoint
    app.hot_endpoints = endpoints
    return endpoints
