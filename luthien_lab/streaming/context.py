"""``StreamingResponseContext`` and the egress queue policies write to."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from luthien_lab.observability import NoOpObservabilityContext, ObservabilityContext

if TYPE_CHECKING:
    from litellm.types.utils import ModelResponseStream

    from luthien_lab.request import Request
    from luthien_lab.streaming.assembler import StreamingChunkAssembler
    from luthien_lab.streaming.state import StreamState

__all__ = ["EgressQueue", "StreamingResponseContext", "is_chunk", "is_response"]


def _describe(item: Any) -> str:
    if item is None:
        return "None"
    text = repr(item)
    shown = text if len(text) <= 60 else text[:57] + "..."
    return f"a {type(item).__qualname__} ({shown})"


# The chunk classes seen so far: the check per chunk is one set lookup.
_CHUNK_CLASSES: set[type] = set()


def is_chunk(item: Any) -> bool:
    """Whether ``item`` is a stream chunk: litellm's ``ModelResponseStream`` or the
    litellm-free :class:`luthien_lab.streaming.lite.Chunk` (either, or a subclass).
    Never imports litellm: without it imported, no litellm chunk can exist."""
    cls = type(item)
    if cls in _CHUNK_CLASSES:
        return True
    from luthien_lab.streaming import lite

    accepted = issubclass(cls, lite.Chunk)
    if not accepted:
        litellm_types = sys.modules.get("litellm.types.utils")
        stream = getattr(litellm_types, "ModelResponseStream", None)
        accepted = stream is not None and issubclass(cls, stream)
    if accepted:
        _CHUNK_CLASSES.add(cls)
    return accepted


def is_response(item: Any) -> bool:
    """Whether ``item`` is a full response: litellm's ``ModelResponse`` or
    :class:`luthien_lab.streaming.lite.Response` (never imports litellm)."""
    from luthien_lab.streaming import lite

    if isinstance(item, lite.Response):
        return True
    litellm_types = sys.modules.get("litellm.types.utils")
    response = getattr(litellm_types, "ModelResponse", None)
    return response is not None and isinstance(item, response)


class EgressQueue:
    """Where a policy puts the chunks the client will receive.

    Quacks like the ``asyncio.Queue`` of the seed (``await put(chunk)``,
    ``put_nowait``), but hands each chunk to the consumer the moment it is put: the
    consumer iterates the queue (``async for chunk in queue``: every chunk put, in
    order, until it is closed), parking one future that ``put`` resolves, so there
    is no polling and no timer, and closing the queue wakes the consumer at once.
    :meth:`drain` takes what is buffered without waiting. One consumer per queue.

    Only stream chunks (:func:`is_chunk`: litellm ``ModelResponseStream`` or its
    litellm-free twin, what :mod:`luthien_lab.streaming.chunks` builds) get in. Anything else (a dict, a
    string, None) raises ``TypeError`` in the hook that put it and is kept in
    ``error``; the queue then takes nothing more, so the client never receives a
    stream with a hole in it or cut short: the orchestrator fails the transaction
    with a :class:`~luthien_lab.errors.PolicyError` naming the hook, even when the
    hook caught the ``TypeError``.
    """

    __slots__ = (
        "_buffer",
        "_closed",
        "_closed_why",
        "_on_put",
        "_waiter",
        "count",
        "error",
        "sent",
    )

    def __init__(self, on_put: Callable[[int, Any, int], None] | None = None) -> None:
        self._buffer: deque[Any] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._closed_why = "the stream has ended"
        self._on_put = on_put
        self.count = 0
        """How many chunks were put so far."""
        self.sent: list[Any] = []
        """Every chunk put so far, in order."""
        self.error: TypeError | None = None
        """Why the queue refused a chunk (None: it never did)."""

    def put_nowait(self, chunk: ModelResponseStream) -> None:
        # A set lookup of the class first: this runs per chunk.
        if type(chunk) not in _CHUNK_CLASSES and not is_chunk(chunk):
            self._refuse(chunk)
        if self._closed:
            self._refuse_closed()
        self._buffer.append(chunk)
        self.sent.append(chunk)
        on_put = self._on_put
        if on_put is not None:
            on_put(self.count, chunk, time.perf_counter_ns())
        self.count += 1
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _refuse(self, item: Any) -> None:
        error = TypeError(
            f"egress_queue.put got {_describe(item)}, not a stream chunk (a litellm "
            "ModelResponseStream or luthien_lab.streaming.lite.Chunk); build chunks with luthien_lab.streaming.chunks "
            "(create_text_chunk, create_chunk...) or send with "
            "luthien_lab.streaming.helpers (send_text...)"
        )
        if self.error is None:
            self.error = error
            # Take nothing more: what the hook puts after a bad chunk would reach the
            # client with a hole before it.
            self.close()
        raise error

    def _refuse_closed(self) -> None:
        if self.error is not None:
            raise TypeError(f"egress queue takes nothing after a refused chunk: {self.error}")
        raise RuntimeError(
            f"egress queue is closed: {self._closed_why}, a chunk can no longer be sent"
        )

    async def put(self, chunk: ModelResponseStream) -> None:
        self.put_nowait(chunk)

    def close(self, why: str | None = None) -> None:
        """Take no more chunks (``why``: the reason a late ``put`` is told)."""
        if why is not None and not self._closed:
            self._closed_why = why
        self._closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def closed(self) -> bool:
        return self._closed

    def qsize(self) -> int:
        return len(self._buffer)

    def empty(self) -> bool:
        return not self._buffer

    def drain(self) -> list[Any]:
        """Take every buffered chunk (empty: none), for a consumer that loops over a
        list: it pays less per chunk than one more async generator step."""
        buffer = self._buffer
        if not buffer:
            return []
        items = list(buffer)
        buffer.clear()
        return items

    def __aiter__(self) -> AsyncGenerator[Any, None]:
        """Every chunk put, in order, each as soon as it is put; ends once the queue
        is closed and every chunk put before has been taken. An async generator, not
        an ``__anext__`` coroutine: that would cost a coroutine per chunk."""
        return self._chunks()

    def wait(self) -> asyncio.Future[None]:
        """A future done once a chunk is put or the queue is closed; awaited as it is
        (a coroutine around it would cost one per wait). One consumer at a time."""
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        return waiter

    async def _chunks(self) -> AsyncGenerator[Any, None]:
        buffer = self._buffer
        while True:
            while buffer:
                yield buffer.popleft()
            if self._closed:
                return
            await self.wait()


@dataclass(eq=False)
class StreamingResponseContext:
    """What every streaming hook receives.

    - ``transaction_id``; ``final_request``: the request as sent upstream.
    - ``ingress_assembler`` / ``ingress_state``: the blocks assembled so far.
    - ``egress_queue``: put chunks here (or use :mod:`luthien_lab.streaming.helpers`).
    - ``scratchpad``: per-transaction state. A policy instance serves many streams at
      once, so anything that belongs to one stream goes here, never on ``self``.
    - ``observability``: emit events and metrics tied to this transaction.
    - ``original_request``: the client's request before ``on_request``.
    """

    transaction_id: str
    final_request: Request
    ingress_assembler: StreamingChunkAssembler | None
    egress_queue: Any
    scratchpad: dict[str, Any] = field(default_factory=dict)
    observability: ObservabilityContext = field(default_factory=NoOpObservabilityContext)
    original_request: Request | None = None

    @property
    def ingress_state(self) -> StreamState:
        if self.ingress_assembler is None:
            raise RuntimeError("ingress_assembler not yet initialized")
        return self.ingress_assembler.state

    @property
    def request(self) -> Request:
        """Alias of ``final_request``."""
        return self.final_request
