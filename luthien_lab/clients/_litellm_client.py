"""``LiteLLMClient``: any model litellm supports, the local provider by default offline.

litellm is imported through the one door, :func:`~luthien_lab.clients._litellm.import_litellm`,
only when a call is made.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from luthien_lab.clients._base import LLMClient, set_stream_mode
from luthien_lab.clients._litellm import import_litellm

if TYPE_CHECKING:
    from luthien_lab.request import Request

__all__ = ["LiteLLMClient"]


class LiteLLMClient(LLMClient):
    """Calls ``litellm.acompletion`` with every field of the request passed through
    (``tools``, ``api_base``, ``api_key``, ``extra_headers``, ...).

    ``route_local`` (default True) sends a request that names no ``api_base`` to the
    target :func:`luthien_lab.provider.resolve_target` picks: the bundled local
    provider unless a real provider key is set (``LUTHIEN_LAB_PROVIDER`` switches
    it). ``defaults`` are keyword arguments added to every call unless the request
    sets them.
    """

    def __init__(self, *, route_local: bool = True, **defaults: Any) -> None:
        self.route_local = route_local
        self.defaults = defaults

    def _kwargs(self, request: Request, stream: bool) -> dict[str, Any]:
        kwargs = set_stream_mode({**self.defaults, **request.to_litellm_kwargs()}, stream)
        if self.route_local and "api_base" not in kwargs:
            from luthien_lab.provider._routing import resolve_target

            for key, value in resolve_target(kwargs["model"]).items():
                kwargs.setdefault(key, value)
        return kwargs

    async def stream(self, request: Request) -> AsyncIterator[Any]:
        # The target first (it may start the local provider), then litellm.
        kwargs = self._kwargs(request, stream=True)
        litellm = import_litellm()
        response = await litellm.acompletion(**kwargs)
        try:
            async for chunk in response:
                yield chunk
        finally:
            close = getattr(response, "aclose", None)
            if close is not None:
                # Closing a broken stream must not mask the real error.
                with contextlib.suppress(Exception):
                    await close()

    async def complete(self, request: Request) -> Any:
        kwargs = self._kwargs(request, stream=False)
        return await import_litellm().acompletion(**kwargs)

    def provider_for(self, request: Request) -> str:
        model = request.model
        if "/" in model:
            prefix = model.split("/", 1)[0]
        elif model.startswith("claude"):
            prefix = "anthropic"
        else:
            prefix = "openai"
        extra = request.model_extra or {}
        if self.route_local and "api_base" not in extra and "api_base" not in self.defaults:
            from luthien_lab.provider._routing import resolve_target

            if resolve_target(model):
                return f"local:{prefix}"
        return prefix
