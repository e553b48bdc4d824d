"""``NoOpPolicy``: forwards every chunk and response unchanged."""

from __future__ import annotations

from typing import TYPE_CHECKING

from luthien_lab.policies.base import Policy

if TYPE_CHECKING:
    from luthien_lab.streaming.context import StreamingResponseContext

__all__ = ["NoOpPolicy", "PassthroughPolicy"]


class NoOpPolicy(Policy):
    """Forwards every ingress chunk as it arrives, including usage-only trailers."""

    async def on_chunk_received(self, ctx: StreamingResponseContext) -> None:
        ctx.egress_queue.put_nowait(ctx.ingress_state.raw_chunks[-1])


PassthroughPolicy = NoOpPolicy
