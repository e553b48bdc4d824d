"""``ScriptedLLMClient``: a test double that plays given chunks or responses.

Shipped in the library (like httpx's ``MockTransport``) so that policy tests need
no network and no provider.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from luthien_lab.clients._base import LLMClient
from luthien_lab.clients._litellm import litellm_types
from luthien_lab.streaming import lite
from luthien_lab.streaming.lite import use_litellm

if TYPE_CHECKING:
    from luthien_lab.request import Request

__all__ = ["ScriptedLLMClient", "to_chunk", "to_response"]


def to_chunk(item: Any) -> Any:
    """A stream chunk from a chunk object (returned as is), a dict or JSON text: a
    litellm ``ModelResponseStream`` when litellm is imported already, else its
    litellm-free equivalent (:mod:`luthien_lab.streaming.lite`)."""
    if isinstance(item, str | bytes):
        item = json.loads(item)
    if not isinstance(item, Mapping):
        return item
    if use_litellm():
        return litellm_types().ModelResponseStream(**item)
    return lite.Chunk.from_dict(dict(item))


def to_response(item: Any) -> Any:
    """A full response from a response object (returned as is), a dict or JSON text:
    a litellm ``ModelResponse`` when litellm is imported already, else its litellm-free
    equivalent."""
    if isinstance(item, str | bytes):
        item = json.loads(item)
    if not isinstance(item, Mapping):
        return item
    if use_litellm():
        return litellm_types().ModelResponse(**item)
    return lite.Response.from_dict(dict(item))


class ScriptedLLMClient(LLMClient):
    """Plays a script instead of calling a model.

    - ``chunks``: the stream every ``stream()`` call plays (objects or dicts);
      ``complete()`` returns them reconstructed into one response.
    - ``response``: what ``complete()`` returns; ``stream()`` plays it as chunks.
    - ``script``: ``callable(request) -> chunks | response`` for per-request answers.
    - ``delay``: seconds to sleep before each chunk (0: yield to the loop only).
    - ``fail_after`` + ``error``: raise ``error`` after that many chunks (or before
      the response); ``stall_after``: go silent forever after that many chunks.

    Every request received is kept in ``requests``; ``open_streams`` counts streams
    started and not yet closed (tests use it to prove cancellation reached upstream).
    """

    def __init__(
        self,
        chunks: Iterable[Any] | None = None,
        *,
        response: Any = None,
        script: Callable[[Request], Any] | None = None,
        delay: float = 0.0,
        fail_after: int | None = None,
        error: BaseException | None = None,
        stall_after: int | None = None,
        provider: str = "scripted",
    ) -> None:
        if chunks is None and response is None and script is None:
            raise ValueError(
                "ScriptedLLMClient needs chunks=, response= or script=; got none of them"
            )
        self._chunks = [to_chunk(c) for c in chunks] if chunks is not None else None
        self._response = to_response(response) if response is not None else None
        self._script = script
        self.delay = delay
        self.fail_after = fail_after
        self.error = error
        self.stall_after = stall_after
        self.provider = provider
        self.requests: list[Request] = []
        self.open_streams = 0

    def _chunks_for(self, request: Request) -> Sequence[Any]:
        if self._script is not None:
            answer = self._script(request)
            if isinstance(answer, list | tuple):
                return [to_chunk(c) for c in answer]
            return chunks_from_response(to_response(answer))
        if self._chunks is not None:
            return self._chunks
        return chunks_from_response(self._response)

    async def stream(self, request: Request) -> AsyncIterator[Any]:
        self.requests.append(request)
        chunks = self._chunks_for(request)
        self.open_streams += 1
        try:
            for number, chunk in enumerate(chunks):
                if self.fail_after is not None and number == self.fail_after:
                    raise self.error or RuntimeError("scripted failure")
                if self.stall_after is not None and number == self.stall_after:
                    await asyncio.Event().wait()
                if self.delay:
                    await asyncio.sleep(self.delay)
                else:
                    await asyncio.sleep(0)
                yield chunk
            if self.fail_after is not None and self.fail_after >= len(chunks):
                raise self.error or RuntimeError("scripted failure")
        finally:
            self.open_streams -= 1

    async def complete(self, request: Request) -> Any:
        self.requests.append(request)
        if self.fail_after is not None:
            raise self.error or RuntimeError("scripted failure")
        if self.delay:
            await asyncio.sleep(self.delay)
        if self._script is not None:
            answer = self._script(request)
            if isinstance(answer, list | tuple):
                from luthien_lab.streaming.reconstruct import reconstruct_full_response

                return reconstruct_full_response([to_chunk(c) for c in answer])
            return to_response(answer)
        if self._response is not None:
            return self._response.model_copy(deep=True)
        from luthien_lab.streaming.reconstruct import reconstruct_full_response

        return reconstruct_full_response(self._chunks or [])

    def provider_for(self, request: Request) -> str:
        return self.provider


def chunks_from_response(response: Any, text_chunk_size: int = 0) -> list[Any]:
    """Stream chunks equivalent to a full response: role, content (optionally split
    every ``text_chunk_size`` characters), one chunk per tool call, finish."""
    from luthien_lab.streaming.chunks import create_chunk, tool_call_delta

    choice = response.choices[0]
    message = choice.message
    chunks = [create_chunk(response, role="assistant", content="")]
    reasoning = getattr(message, "reasoning_content", None)
    if reasoning:
        chunks.append(create_chunk(response, reasoning_content=reasoning))
    text = message.content or ""
    step = text_chunk_size or len(text) or 1
    for start in range(0, len(text), step):
        chunks.append(create_chunk(response, content=text[start : start + step]))
    for index, call in enumerate(message.tool_calls or []):
        entry = tool_call_delta(
            index, id=call.id, name=call.function.name, arguments=call.function.arguments or ""
        )
        chunks.append(create_chunk(response, tool_calls=[entry]))
    chunks.append(
        create_chunk(
            response,
            finish_reason=choice.finish_reason or "stop",
            usage=getattr(response, "usage", None),
        )
    )
    return chunks
