"""``LLMClient``: how the orchestrator talks to a model."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from luthien_lab.request import Request

__all__ = ["LLMClient"]


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
