"""Helpers for streaming hooks: send text, chunks and tool calls; pass chunks through.

Every chunk built here is a well-formed stream chunk whose ``id``/``model`` follow
the stream's first ingress chunk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from luthien_lab.streaming.chunks import create_text_chunk, create_tool_call_chunk

if TYPE_CHECKING:
    from litellm.types.utils import ModelResponseStream

    from luthien_lab.streaming.context import StreamingResponseContext

__all__ = [
    "get_last_ingress_chunk",
    "passthrough_accumulated_chunks",
    "passthrough_last_chunk",
    "send_chunk",
    "send_text",
    "send_tool_call",
    "template_chunk",
]


def template_chunk(ctx: StreamingResponseContext) -> Any:
    """The stream's first ingress chunk (or None): the model for built chunks."""
    assembler = ctx.ingress_assembler
    if assembler is None or not assembler.state.raw_chunks:
        return None
    return assembler.state.raw_chunks[0]


async def send_text(ctx: StreamingResponseContext, text: str) -> None:
    """Send ``text`` as one content chunk. Raises ValueError on empty text."""
    if not text:
        raise ValueError("send_text needs non-empty text; to send nothing, do not call it")
    await ctx.egress_queue.put(create_text_chunk(text, template_chunk(ctx)))


async def send_chunk(ctx: StreamingResponseContext, chunk: ModelResponseStream) -> None:
    """Send ``chunk`` as is."""
    await ctx.egress_queue.put(chunk)


async def send_tool_call(ctx: StreamingResponseContext, tool_call: Any, index: int = 0) -> None:
    """Send a complete tool call (id, name, all arguments) as one chunk at ``index``."""
    await ctx.egress_queue.put(create_tool_call_chunk(tool_call, template_chunk(ctx), index=index))


def get_last_ingress_chunk(ctx: StreamingResponseContext) -> ModelResponseStream | None:
    """The most recent chunk from the provider, or None before the first."""
    chunks = ctx.ingress_state.raw_chunks
    return chunks[-1] if chunks else None


async def passthrough_last_chunk(ctx: StreamingResponseContext) -> None:
    """Forward the most recent ingress chunk unchanged."""
    chunks = ctx.ingress_state.raw_chunks
    if chunks:
        ctx.egress_queue.put_nowait(chunks[-1])
        ctx.ingress_state.last_emission_index = len(chunks)


async def passthrough_accumulated_chunks(ctx: StreamingResponseContext) -> None:
    """Forward every ingress chunk not forwarded yet by this helper, in order."""
    state = ctx.ingress_state
    queue = ctx.egress_queue
    for chunk in state.raw_chunks[state.last_emission_index :]:
        await queue.put(chunk)
    state.last_emission_index = len(state.raw_chunks)
