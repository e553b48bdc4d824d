"""``LLMClient``: how the orchestrator talks to a model."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from luthien_lab.request import Request

__all__ = ["ChunkBatches", "LLMClient", "set_stream_mode"]


class LLMClient(ABC):
    """A model behind one interface: ``stream`` yields litellm ``ModelResponseStream``
    chunks, ``complete`` returns a litellm ``ModelResponse``."""

    @abstractmethod
    def stream(self, request: Request) -> AsyncIterator[Any]:
        """Stream the response to ``request`` (an async iterator of chunks; it may be a
        :class:`ChunkBatches`)."""

    @abstractmethod
    async def complete(self, request: Request) -> Any:
        """The full, non-streaming response to ``request``."""

    def provider_for(self, request: Request) -> str:
        """Name of the provider that serves ``request`` (for errors and recording)."""
        return type(self).__name__


class ChunkBatches:
    """A stream of chunks that arrive in groups (the events of one read of the
    provider's answer), as ``LLMClient.stream`` may return it: iterated, it gives the
    chunks one by one, as any stream does, and the orchestrator reads :meth:`batches`
    instead, one step per group rather than one per chunk."""

    __slots__ = ("_batches", "_chunks")

    def __init__(self, batches: AsyncGenerator[list[Any], None]) -> None:
        self._batches = batches
        self._chunks: AsyncGenerator[Any, None] | None = None

    def batches(self) -> AsyncGenerator[list[Any], None]:
        """The chunks as lists, in order (read it this way or chunk by chunk, once)."""
        return self._batches

    def __aiter__(self) -> ChunkBatches:
        return self

    def __anext__(self) -> Awaitable[Any]:
        if self._chunks is None:
            self._chunks = self._each()
        return self._chunks.__anext__()

    async def _each(self) -> AsyncGenerator[Any, None]:
        async for batch in self._batches:
            for chunk in batch:
                yield chunk

    async def aclose(self) -> None:
        if self._chunks is not None:
            await self._chunks.aclose()
        await self._batches.aclose()


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
