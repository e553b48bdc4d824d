"""``StreamingResponseContext`` and the egress queue policies write to."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from luthien_lab.observability import NoOpObservabilityContext, ObservabilityContext

if TYPE_CHECKING:
    from litellm.types.utils import ModelResponseStream

    from luthien_lab.request import Request
    from luthien_lab.streaming.assembler import StreamingChunkAssembler
    from luthien_lab.streaming.state import StreamState

__all__ = ["EgressQueue", "StreamingResponseContext"]


class EgressQueue:
    """Where a policy puts the chunks the client will receive.

    Quacks like the ``asyncio.Queue`` of the seed (``await put(chunk)``,
    ``put_nowait``), but hands each chunk to the consumer the moment it is put: the
    consumer (the orchestrator's egress loop) parks one future in ``_waiter`` that
    ``put`` resolves, so there is no polling and no timer, and closing the queue
    wakes the consumer at once.
    """

    __slots__ = ("_buffer", "_closed", "_on_put", "_waiter", "count", "sent")

    def __init__(self, on_put: Callable[[int, Any, int], None] | None = None) -> None:
        self._buffer: deque[Any] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._on_put = on_put
        self.count = 0
        """How many chunks were put so far."""
        self.sent: list[Any] = []
        """Every chunk put so far, in order."""

    def put_nowait(self, chunk: ModelResponseStream) -> None:
        if self._closed:
            raise RuntimeError(
                "egress queue is closed: the stream has ended, a chunk can no longer be sent"
            )
        self._buffer.append(chunk)
        self.sent.append(chunk)
        on_put = self._on_put
        if on_put is not None:
            on_put(self.count, chunk, time.perf_counter_ns())
        self.count += 1
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def put(self, chunk: ModelResponseStream) -> None:
        self.put_nowait(chunk)

    def close(self) -> None:
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
        """Take every buffered chunk."""
        items = list(self._buffer)
        self._buffer.clear()
        return items


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
