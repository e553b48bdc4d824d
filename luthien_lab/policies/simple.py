"""``SimplePolicy``: transform whole content and whole tool calls; the streaming is done for you.

Subclasses override any of:

- ``on_request_simple(request) -> Request``
- ``on_response_content(content, request) -> str``
- ``on_response_tool_call(tool_call, request) -> ToolCall | None`` (None blocks the call)

Streaming: each block is buffered until complete, then transformed. An unchanged
block goes out as the provider's original chunks; a changed one as one new chunk.
The role goes out once, on the first chunk sent; the finish chunk goes last, once,
followed by any usage-only trailer. When every tool call was blocked, the finish
reason ``tool_calls`` becomes ``stop``. Streaming and non-streaming give the same
final response.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from luthien_lab.policies.base import Policy, PolicyContext, mark_blocked
from luthien_lab.streaming.blocks import (
    ContentStreamBlock,
    StreamBlock,
    ThinkingStreamBlock,
    ToolCallStreamBlock,
)
from luthien_lab.streaming.chunks import (
    create_chunk,
    create_finish_chunk,
    create_text_chunk,
    create_tool_call_chunk,
    tool_call_delta,
)
from luthien_lab.streaming.fields import read_delta, read_signature

if TYPE_CHECKING:
    from litellm.types.utils import ModelResponse

    from luthien_lab.request import Request
    from luthien_lab.streaming.context import StreamingResponseContext

__all__ = ["SimplePolicy"]

_STATE_KEY = "luthien_lab.simple_policy"


class _StreamProgress:
    """Per-stream bookkeeping, kept in the scratchpad (never on the policy)."""

    __slots__ = ("finish_sent", "held_trailers", "role_sent", "tools_kept", "tools_seen")

    def __init__(self) -> None:
        self.role_sent = False
        self.finish_sent = False
        self.tools_seen = 0
        self.tools_kept = 0
        self.held_trailers: list[Any] = []


def _progress(ctx: StreamingResponseContext) -> _StreamProgress:
    progress = ctx.scratchpad.get(_STATE_KEY)
    if progress is None:
        progress = ctx.scratchpad[_STATE_KEY] = _StreamProgress()
    return progress


def _has_payload(delta: Any) -> bool:
    reasoning, content, tool_calls = read_delta(delta)
    # A thinking signature is part of its thinking block: sent with the block.
    return bool(content or tool_calls or reasoning or read_signature(delta))


class SimplePolicy(Policy):
    """Content-level policy base class. See the module doc."""

    # ----- what subclasses override -----

    async def on_request_simple(self, request: Request) -> Request:
        """Transform or validate the request (raise RequestRefused to refuse it)."""
        return request

    async def on_response_content(self, content: str, request: Request) -> str:
        """Transform the complete response text."""
        return content

    async def on_response_tool_call(self, tool_call: Any, request: Request) -> Any | None:
        """Transform a complete tool call (litellm ``ChatCompletionMessageToolCall``);
        return None to block it."""
        return tool_call

    # ----- request -----

    async def on_request(self, request: Request, context: PolicyContext) -> Request:
        return await self.on_request_simple(request)

    # ----- streaming -----

    async def on_chunk_received(self, ctx: StreamingResponseContext) -> None:
        state = ctx.ingress_state
        chunk = state.raw_chunks[-1]
        progress = _progress(ctx)
        if not chunk.choices:
            if progress.finish_sent:
                await ctx.egress_queue.put(chunk)
            else:
                progress.held_trailers.append(chunk)
            return
        choice = chunk.choices[0]
        if choice.delta is not None and _has_payload(choice.delta):
            return  # sent when its block completes
        if choice.finish_reason:
            return  # sent by on_finish_reason, after the blocks it completes
        # A metadata chunk (OpenAI's opening role chunk, say): forward it now.
        await self._emit_original(ctx, chunk, progress)

    async def on_content_complete(self, ctx: StreamingResponseContext) -> None:
        block = ctx.ingress_state.just_completed
        if not isinstance(block, ContentStreamBlock):
            return
        original = block.content
        transformed = await self.on_response_content(original, ctx.final_request)
        if transformed == original:
            await self._emit_block(ctx, block)
        elif transformed:
            await self._emit_built(ctx, create_text_chunk(transformed, self._template(ctx)))

    async def on_thinking_complete(self, ctx: StreamingResponseContext) -> None:
        block = ctx.ingress_state.just_completed
        if isinstance(block, ThinkingStreamBlock):
            await self._emit_block(ctx, block)

    async def on_tool_call_complete(self, ctx: StreamingResponseContext) -> None:
        block = ctx.ingress_state.just_completed
        if not isinstance(block, ToolCallStreamBlock):
            return
        progress = _progress(ctx)
        progress.tools_seen += 1
        original = block.tool_call
        transformed = await self.on_response_tool_call(original, ctx.final_request)
        if transformed is None:
            ctx.observability.emit_event(
                "tool_call_blocked", {"id": block.id, "name": block.name, "index": block.index}
            )
            mark_blocked(ctx, f"tool call {block.name} blocked")
            return
        out_index = progress.tools_kept
        progress.tools_kept += 1
        if _same_tool_call(transformed, original):
            await self._emit_block(ctx, block, tool_index=out_index)
        else:
            await self._emit_built(
                ctx, create_tool_call_chunk(transformed, self._template(ctx), index=out_index)
            )

    async def on_finish_reason(self, ctx: StreamingResponseContext) -> None:
        state = ctx.ingress_state
        progress = _progress(ctx)
        reason = state.finish_reason or "stop"
        if reason == "tool_calls" and progress.tools_seen and not progress.tools_kept:
            reason = "stop"
        chunk = state.raw_chunks[-1]
        choice = chunk.choices[0]
        pure = (
            choice.finish_reason == reason
            and not _has_payload(choice.delta)
            and not (progress.role_sent and choice.delta.role)
        )
        if pure:
            await self._emit_original(ctx, chunk, progress)
        else:
            usage = getattr(chunk, "usage", None)
            await self._emit_built(ctx, create_finish_chunk(reason, self._template(ctx), usage))
        progress.finish_sent = True
        for trailer in progress.held_trailers:
            await ctx.egress_queue.put(trailer)
        progress.held_trailers.clear()

    async def on_stream_complete(self, ctx: StreamingResponseContext) -> None:
        progress = _progress(ctx)
        for trailer in progress.held_trailers:
            await ctx.egress_queue.put(trailer)
        progress.held_trailers.clear()

    # ----- non-streaming -----

    async def process_full_response(
        self, response: ModelResponse, context: PolicyContext
    ) -> ModelResponse:
        response = response.model_copy(deep=True)
        request = context.request
        for choice in response.choices:
            message = choice.message  # type: ignore[union-attr]
            if message.content:
                transformed = await self.on_response_content(message.content, request)
                message.content = transformed or None
            calls = message.tool_calls or []
            kept = []
            for call in calls:
                result = await self.on_response_tool_call(call, request)
                if result is None:
                    name = getattr(getattr(call, "function", None), "name", None)
                    context.observability.emit_event(
                        "tool_call_blocked", {"id": call.id, "name": name}
                    )
                    mark_blocked(context, f"tool call {name} blocked")
                else:
                    kept.append(result)
            if calls:
                message.tool_calls = kept or None
                if not kept and choice.finish_reason == "tool_calls":
                    choice.finish_reason = "stop"
        return response

    # ----- emission -----

    @staticmethod
    def _template(ctx: StreamingResponseContext) -> Any:
        return ctx.ingress_state.raw_chunks[0]

    async def _emit_original(
        self, ctx: StreamingResponseContext, chunk: Any, progress: _StreamProgress
    ) -> None:
        role = chunk.choices[0].delta.role if chunk.choices else None
        if role and progress.role_sent:
            chunk = chunk.model_copy(deep=True)
            chunk.choices[0].delta.role = None
        progress.role_sent = True
        await ctx.egress_queue.put(chunk)

    async def _emit_built(self, ctx: StreamingResponseContext, chunk: Any) -> None:
        progress = _progress(ctx)
        if not progress.role_sent:
            chunk.choices[0].delta.role = "assistant"
            progress.role_sent = True
        await ctx.egress_queue.put(chunk)

    async def _emit_block(
        self, ctx: StreamingResponseContext, block: StreamBlock, tool_index: int | None = None
    ) -> None:
        """Send the block's original chunks; a chunk that also carries another block's
        data (or the finish reason, or a role already sent) goes out as a slice holding
        only this block's part."""
        raw = ctx.ingress_state.raw_chunks
        progress = _progress(ctx)
        for index in block.chunk_indices:
            chunk = raw[index]
            piece = _slice_for_block(chunk, block, tool_index, progress.role_sent)
            if piece is chunk:
                await self._emit_original(ctx, chunk, progress)
            else:
                await self._emit_built(ctx, piece)


def _same_tool_call(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return (
            a.id == b.id
            and a.function.name == b.function.name
            and a.function.arguments == b.function.arguments
        )
    except AttributeError:
        return False


def _slice_for_block(
    chunk: Any, block: StreamBlock, tool_index: int | None, role_sent: bool
) -> Any:
    """``chunk`` itself when it holds only ``block``'s data, else a new chunk with just that."""
    choice = chunk.choices[0]
    delta = choice.delta
    reasoning = getattr(delta, "reasoning_content", None)
    content = delta.content
    tool_calls = delta.tool_calls or []
    role = None if role_sent else delta.role
    clean_role = not (role_sent and delta.role)
    if isinstance(block, ContentStreamBlock):
        if not reasoning and not tool_calls and not choice.finish_reason and clean_role:
            return chunk
        return create_text_chunk(content or "", chunk, role=role)
    if isinstance(block, ThinkingStreamBlock):
        if not content and not tool_calls and not choice.finish_reason and clean_role:
            return chunk
        return create_chunk(chunk, reasoning_content=reasoning or "", role=role)
    assert isinstance(block, ToolCallStreamBlock)
    mine = [tc for tc in tool_calls if tc.index == block.index]
    if (
        len(tool_calls) == 1
        and mine
        and not content
        and not reasoning
        and not choice.finish_reason
        and clean_role
        and tool_index == block.index
    ):
        return chunk
    entries = [
        tool_call_delta(
            block.index if tool_index is None else tool_index,
            id=tc.id,
            name=tc.function.name if tc.function else None,
            arguments=(tc.function.arguments if tc.function else "") or "",
        )
        for tc in mine
    ]
    return create_chunk(chunk, tool_calls=entries, role=role)
