"""``LLMClient``: how the orchestrator talks to a model."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from luthien_lab.request import Request

__all__ = ["LLMClient", "set_stream_mode"]


class LLMClient(ABC):
    """A model behind one interface: ``stream`` yields litellm ``ModelResponseStream``
    chunks, ``complete`` returns a litellm ``ModelResponse``."""

    @abstractmethod
    def stream(self, request: Request) -> AsyncIterator[Any]:
        """Stream the response to ``request`` (an async iterator of chunks)."""

    @abstractmethod
    async def complete(self, request: Request) -> Any:
        """The full, non-streaming response to ``request``."""

    def provider_for(self, request: Request) -> str:
        """Name of the provider that serves ``request`` (for errors and recording)."""
        return type(self).__name__


def set_stream_mode(body: dict[str, Any], stream: bool) -> dict[str, Any]:
    """Set ``stream`` on an OpenAI-style request body; a stream also asks for the usage
    trailer (``stream_options.include_usage``), which policies and recordings keep."""
    body["stream"] = stream
    if stream:
        options = dict(body.get("stream_options") or {})
        options.setdefault("include_usage", True)
        body["stream_options"] = options
    else:
        body.pop("stream_options", None)
    return body
