"""``StreamingChunkAssembler``: turns provider chunks into blocks, one chunk at a time.

For each chunk, :meth:`StreamingChunkAssembler.feed` updates the :class:`StreamState`
and returns the block events that chunk caused, in order, as ``(DELTA|COMPLETE,
block)`` pairs. One chunk can cause several: it can end one block and start the
next, or carry several tool calls (OpenAI's parallel tool calls in one delta). The
orchestrator turns each event into a hook call, after
:meth:`StreamingChunkAssembler.point_to` has pointed the state at the event's block.

Order within a chunk: thinking, then content, then tool calls by position in the
delta, then (on ``finish_reason``) completion of the open block. A block completes
when another block receives a delta or the stream finishes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from luthien_lab.streaming.blocks import (
    ContentStreamBlock,
    StreamBlock,
    ThinkingStreamBlock,
    ToolCallStreamBlock,
)
from luthien_lab.streaming.fields import (
    NO_CHOICES,
    field_of,
    is_lazy_trailer,
    read_chunk,
    read_delta,
    read_plain_event,
    read_signature,
    read_text_only,
    read_usage,
)
from luthien_lab.streaming.lite import is_lite
from luthien_lab.streaming.state import StreamState

if TYPE_CHECKING:
    from litellm.types.utils import ModelResponseStream

__all__ = [
    "COMPLETE",
    "COMPLETE_HOOKS",
    "DELTA",
    "DELTA_HOOKS",
    "FINISH",
    "BlockEvent",
    "StreamingChunkAssembler",
    "field_of",
]

DELTA = 0
COMPLETE = 1
FINISH = 2
BlockEvent = tuple[int, StreamBlock]

# The policy hook each block event fires (FINISH fires on_finish_reason).
DELTA_HOOKS = {
    ContentStreamBlock: "on_content_delta",
    ToolCallStreamBlock: "on_tool_call_delta",
    ThinkingStreamBlock: "on_thinking_delta",
}
COMPLETE_HOOKS = {
    ContentStreamBlock: "on_content_complete",
    ToolCallStreamBlock: "on_tool_call_complete",
    ThinkingStreamBlock: "on_thinking_complete",
}


class StreamingChunkAssembler:
    """Assembles one stream. Not shared between streams: make one per transaction.

    ``on_chunk`` (optional, for the seed's callback style) is awaited by
    :meth:`process` after each chunk with ``(chunk, state, context)``.
    """

    __slots__ = ("on_chunk", "state")

    def __init__(
        self,
        on_chunk: Callable[[Any, StreamState, Any], Awaitable[None]] | None = None,
    ) -> None:
        self.state = StreamState()
        self.on_chunk = on_chunk

    async def process(self, incoming: AsyncIterator[ModelResponseStream], context: Any) -> None:
        """Seed-style driver: feed every chunk, then call ``on_chunk`` for it."""
        async for chunk in incoming:
            self.feed(chunk)
            if self.on_chunk is not None:
                await self.on_chunk(chunk, self.state, context)
        self.finish()

    def feed(self, chunk: ModelResponseStream) -> list[BlockEvent]:
        """Take one chunk; return the block events it caused, in order (a final
        ``(FINISH, None)`` when the chunk carries the finish reason)."""
        state = self.state
        index = len(state.raw_chunks)
        state.raw_chunks.append(chunk)
        plain = state.text_only = read_text_only(chunk)
        state.text_only_of = chunk
        if plain is not None:
            # The common chunk: one more piece of the open text block. One reading of
            # the chunk instead of three (hooks reuse it through state.text_only).
            open_text = state.content_block
            if (
                open_text is not None
                and state.current_block is open_text
                and not open_text.is_complete
                and read_usage(chunk) is None
            ):
                open_text.append(plain[0])
                open_text.chunk_indices.append(index)
                return [(DELTA, open_text)]
        payload = read_plain_event(chunk)
        if payload is not None:  # a lazy chunk, read without waking it
            finish_reason, reasoning, content = payload
            return self._payload(index, reasoning, content, None, finish_reason)
        if is_lazy_trailer(chunk):  # its usage read only if someone reads state.usage
            state.usage_of(chunk)
            return []
        usage, delta, finish_reason = read_chunk(chunk)
        if usage is not None:
            state.usage = usage
        if delta is NO_CHOICES:
            return []
        reasoning = content = tool_calls = None
        if delta is not None:
            reasoning, content, tool_calls = read_delta(delta)
            if not (reasoning or content or tool_calls):
                self._signature(delta, index)
            if tool_calls and content == "":
                # Anthropic (via litellm) sends content "" beside tool-call deltas.
                delta.content = content = None
        return self._payload(index, reasoning, content, tool_calls, finish_reason)

    def _payload(
        self, index: int, reasoning: Any, content: Any, tool_calls: Any, finish_reason: Any
    ) -> list[BlockEvent]:
        """The block events of chunk ``index``'s payload, in order."""
        state = self.state
        events: list[BlockEvent] = []
        if reasoning:
            block = state.thinking_block
            if block is None:
                block = state.thinking_block = ThinkingStreamBlock(f"thinking-{len(state.blocks)}")
                state.blocks.append(block)
            self._switch_to(block, events)
            block.append(reasoning)
            self._touch(block, index, events)
        if content:
            text = state.content_block
            if text is None:
                text = state.content_block = ContentStreamBlock()
                state.blocks.append(text)
            self._switch_to(text, events)
            text.append(content)
            self._touch(text, index, events)
        if tool_calls:
            for tool_call in tool_calls:
                self._tool_delta(tool_call, index, events)
        if finish_reason:
            state.finish_reason = finish_reason
            current = state.current_block
            if current is not None and not current.is_complete:
                current.is_complete = True
                state.just_completed = current
                events.append((COMPLETE, current))
            events.append((FINISH, None))  # type: ignore[arg-type]
        return events

    def finish(self) -> list[BlockEvent]:
        """The stream ended: complete the open block, if any (a stream cut short
        without a finish reason still completes its last block)."""
        current = self.state.current_block
        if current is not None and not current.is_complete:
            current.is_complete = True
            self.state.just_completed = current
            return [(COMPLETE, current)]
        return []

    def point_to(self, kind: int, block: StreamBlock) -> None:
        """Make the state name the block of the event about to be reported (one
        chunk can cause several events): ``current_block`` for a delta,
        ``just_completed`` for a completion. The assembler is the only writer of
        both; whoever fires hooks per event calls this before each."""
        if kind == DELTA:
            self.state.current_block = block
        elif kind == COMPLETE:
            self.state.just_completed = block

    def _signature(self, delta: Any, index: int) -> None:
        """A thinking signature belongs to its thinking block: the chunk joins the
        block's chunks (so a policy that re-sends the block re-sends it too), and
        fires no delta hook (it adds no text)."""
        signature = read_signature(delta)
        block = self.state.thinking_block
        if signature is None or block is None:
            return
        block.signature = signature
        if not block.chunk_indices or block.chunk_indices[-1] != index:
            block.chunk_indices.append(index)

    def _switch_to(self, block: StreamBlock, events: list[BlockEvent]) -> None:
        state = self.state
        current = state.current_block
        if current is block:
            if block.is_complete:  # a late delta reopens it
                block.is_complete = False
            return
        if current is not None and not current.is_complete:
            current.is_complete = True
            state.just_completed = current
            events.append((COMPLETE, current))
        block.is_complete = False
        state.current_block = block

    @staticmethod
    def _touch(block: StreamBlock, index: int, events: list[BlockEvent]) -> None:
        indices = block.chunk_indices
        if not indices or indices[-1] != index:
            indices.append(index)
        events.append((DELTA, block))

    def _tool_delta(self, tool_call: Any, index: int, events: list[BlockEvent]) -> None:
        state = self.state
        tool_index = field_of(tool_call, "index")
        if tool_index is None:
            tool_index = len(state.tool_blocks)
        call_id = field_of(tool_call, "id")
        function = field_of(tool_call, "function")
        name = field_of(function, "name") if function is not None else None
        arguments = field_of(function, "arguments") if function is not None else None
        block = state.tool_blocks.get(tool_index)
        if block is None:
            block = ToolCallStreamBlock(
                id=call_id or f"call_{tool_index}",
                index=tool_index,
                name=name or "",
                lite=is_lite(tool_call),
            )
            state.tool_blocks[tool_index] = block
            state.blocks.append(block)
        else:
            if call_id and block.id != call_id:
                block.id = call_id
            if name and not block.name:
                block.name = name
        self._switch_to(block, events)
        arguments = arguments or ""
        block.arguments += arguments
        block.last_delta = arguments
        self._touch(block, index, events)
