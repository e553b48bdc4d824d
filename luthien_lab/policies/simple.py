"""``SimplePolicy``: transform whole content and whole tool calls; the streaming is done for you.

Subclasses override any of:

- ``on_request_simple(request) -> Request``
- ``on_response_content(content, request) -> str``
- ``on_response_tool_call(tool_call, request) -> ToolCall | None`` (None blocks the call)

Streaming: a block whose transform the subclass overrides is buffered until complete,
then transformed; an unchanged block goes out as the provider's original chunks, a
changed one as one new chunk. A block nobody transforms (thinking always; text when
``on_response_content`` is not overridden; tool calls when ``on_response_tool_call``
is not) streams as it arrives, chunk by chunk, for as long as no buffered block came
before it (after one, later blocks wait their turn, so the order never changes).
Each chunk sent carries one block's data (a chunk holding two is split). The role
goes out once, on the first chunk sent; the finish chunk goes last, once, followed by
any usage-only trailer. Tool calls are numbered 0, 1, ... in the order they go out.
When every tool call was blocked, the finish reason ``tool_calls`` becomes ``stop``.
Streaming and non-streaming give the same final response.

A thinking signature (a delta with only ``thinking_blocks``, which Anthropic sends
last in a thinking block) belongs to its thinking block and goes out with it.
"""

from __future__ import annotations

from bisect import bisect_right
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
    replace_delta,
    tool_call_delta,
)
from luthien_lab.streaming.fields import (
    NO_CHOICES,
    field_of,
    read_chunk,
    read_delta,
    read_delta_role,
    read_signature,
    read_text_only,
)

if TYPE_CHECKING:
    from litellm.types.utils import ModelResponse

    from luthien_lab.request import Request
    from luthien_lab.streaming.context import StreamingResponseContext

__all__ = ["SimplePolicy"]

_STATE_KEY = "luthien_lab.simple_policy"


class _StreamProgress:
    """Per-stream bookkeeping, kept in the scratchpad (never on the policy).

    ``streaming`` stays True until a block that must be buffered shows up. While it
    does, every part of every chunk of a ``live`` block goes out as it arrives, so a
    live block has nothing left to send when it completes (``text_live``: the content
    block is live, the one-step path for plain text chunks). When streaming stops,
    ``sent`` records for each block the last ingress chunk whose part of it went out.
    ``tool_out`` maps a provider tool-call index to the index it goes out with.
    """

    __slots__ = (
        "finish_sent",
        "held_trailers",
        "live",
        "role_sent",
        "sent",
        "stream_content",
        "stream_tools",
        "streaming",
        "text_done",
        "text_live",
        "tool_out",
        "tools_kept",
        "tools_seen",
    )

    def __init__(self, stream_content: bool, stream_tools: bool) -> None:
        self.role_sent = False
        self.finish_sent = False
        self.tools_seen = 0
        self.tools_kept = 0
        self.held_trailers: list[Any] = []
        self.stream_content = stream_content
        self.stream_tools = stream_tools
        self.streaming = True
        self.text_live = False
        self.text_done = 0  # characters of the content block already transformed and sent
        self.live: set[StreamBlock] = set()
        self.sent: dict[StreamBlock, int] = {}
        self.tool_out: dict[int, int] = {}

    def stop_streaming(self, index: int, sent_now: list[StreamBlock]) -> None:
        """A block that must be buffered arrived with ingress chunk ``index``: from
        here on blocks go out when they complete. ``sent_now``: the live blocks whose
        part of that chunk went out already."""
        self.streaming = False
        self.text_live = False
        for block in self.live:
            self.sent[block] = index if block in sent_now else index - 1
        self.live.clear()


def _has_payload(delta: Any) -> bool:
    reasoning, content, tool_calls = read_delta(delta)
    # A thinking signature is part of its thinking block: sent with the block.
    return bool(content or tool_calls or reasoning or read_signature(delta))


def _inherits(policy: Any, name: str) -> bool:
    """Whether ``policy``'s ``name`` is SimplePolicy's own (not overridden)."""
    method = getattr(policy, name)
    return getattr(method, "__func__", None) is getattr(SimplePolicy, name)


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

    def _progress(self, ctx: StreamingResponseContext) -> _StreamProgress:
        progress = ctx.scratchpad.get(_STATE_KEY)
        if progress is None:
            progress = ctx.scratchpad[_STATE_KEY] = _StreamProgress(
                _inherits(self, "on_response_content"), _inherits(self, "on_response_tool_call")
            )
        return progress

    async def on_chunk_received(self, ctx: StreamingResponseContext) -> None:
        state = ctx.ingress_state
        chunk = state.raw_chunks[-1]
        progress = ctx.scratchpad.get(_STATE_KEY) or self._progress(ctx)
        # The assembler's reading of this chunk, when it took it (it nearly always has).
        text = state.text_only if state.text_only_of is chunk else read_text_only(chunk)
        if text is not None:  # the common chunk: one text delta
            if progress.text_live and not (text[1] and progress.role_sent):
                progress.role_sent = True
                ctx.egress_queue.put_nowait(chunk)
                return
            if not progress.streaming:
                return  # sent when its block completes
        self._received(ctx, chunk, progress)

    def _received(
        self, ctx: StreamingResponseContext, chunk: Any, progress: _StreamProgress
    ) -> None:
        """Every chunk but a plain text delta of a live block."""
        state = ctx.ingress_state
        _usage, delta, finish = read_chunk(chunk)
        if delta is NO_CHOICES:
            if progress.finish_sent:
                ctx.egress_queue.put_nowait(chunk)
            else:
                progress.held_trailers.append(chunk)
            return
        if delta is None:
            reasoning = content = tool_calls = role = None
        else:
            reasoning, content, tool_calls, role = read_delta_role(delta)
        signed = False
        if not (reasoning or content or tool_calls):
            signed = delta is not None and state.thinking_block is not None
            signed = signed and read_signature(delta) is not None
            if not signed:
                if finish:
                    return  # sent by on_finish_reason, after the blocks it completes
                # A metadata chunk (OpenAI's opening role chunk, say): forward it now.
                _send_original(ctx, chunk, role, progress)
                return
        if progress.streaming:
            self._stream_parts(ctx, chunk, progress, reasoning or signed, content, tool_calls)

    def _stream_parts(
        self,
        ctx: StreamingResponseContext,
        chunk: Any,
        progress: _StreamProgress,
        thinking: Any,
        content: Any,
        tool_calls: Any,
    ) -> None:
        """Send this chunk's parts, thinking then text then tool calls (the assembler's
        order), up to the first part whose block must be buffered; from there on,
        blocks go out when they complete."""
        state = ctx.ingress_state
        index = len(state.raw_chunks) - 1
        sent_now: list[StreamBlock] = []
        if thinking:
            block: StreamBlock | None = state.thinking_block
            if block is not None:
                _send_part(ctx, chunk, block, None, progress)
                progress.live.add(block)
                sent_now.append(block)
        if content:
            block = state.content_block
            if not progress.stream_content or block is None:
                progress.stop_streaming(index, sent_now)
                return
            _send_part(ctx, chunk, block, None, progress)
            progress.live.add(block)
            progress.text_live = True
            sent_now.append(block)
        if tool_calls:
            if not progress.stream_tools:
                progress.stop_streaming(index, sent_now)
                return
            blocks: list[ToolCallStreamBlock] = []
            for call in tool_calls:
                tool_index = field_of(call, "index")
                tool_block = state.tool_blocks.get(tool_index) if tool_index is not None else None
                if tool_block is None:  # no index: numbered by the assembler, not streamable
                    progress.stop_streaming(index, sent_now)
                    return
                if tool_block not in blocks:
                    blocks.append(tool_block)
            for tool_block in blocks:
                out = progress.tool_out.get(tool_block.index)
                if out is None:
                    out = progress.tool_out[tool_block.index] = len(progress.tool_out)
                _send_part(ctx, chunk, tool_block, out, progress)
                progress.live.add(tool_block)
                sent_now.append(tool_block)

    async def on_content_complete(self, ctx: StreamingResponseContext) -> None:
        block = ctx.ingress_state.just_completed
        if not isinstance(block, ContentStreamBlock):
            return
        progress = self._progress(ctx)
        if progress.stream_content:  # nothing to transform: what is left goes out as is
            self._send_block(ctx, block, progress)
            return
        # Text after a tool call reopens the one content block: only the text since the
        # last completion is new (transforming it all again would send the start twice).
        content = block.content
        original = content[progress.text_done :]
        progress.text_done = len(content)
        if not original:
            return
        transformed = await self.on_response_content(original, ctx.final_request)
        if transformed == original:
            self._send_block(ctx, block, progress)
            return
        if transformed:
            _send_built(ctx, create_text_chunk(transformed, self._template(ctx)), progress)
        if block.chunk_indices:
            progress.sent[block] = block.chunk_indices[-1]

    async def on_thinking_complete(self, ctx: StreamingResponseContext) -> None:
        block = ctx.ingress_state.just_completed
        if isinstance(block, ThinkingStreamBlock):
            self._send_block(ctx, block, self._progress(ctx))

    async def on_tool_call_complete(self, ctx: StreamingResponseContext) -> None:
        block = ctx.ingress_state.just_completed
        if not isinstance(block, ToolCallStreamBlock):
            return
        progress = self._progress(ctx)
        progress.tools_seen += 1
        if progress.stream_tools:
            out_index = progress.tool_out.get(block.index)
            if out_index is None:
                out_index = progress.tool_out[block.index] = len(progress.tool_out)
            progress.tools_kept += 1
            self._send_block(ctx, block, progress, tool_index=out_index)
            return
        original = block.tool_call
        transformed = await self.on_response_tool_call(original, ctx.final_request)
        if transformed is None:
            ctx.observability.emit_event(
                "tool_call_blocked", {"id": block.id, "name": block.name, "index": block.index}
            )
            mark_blocked(ctx, f"tool call {block.name} blocked")
            return
        out_index = progress.tool_out[block.index] = len(progress.tool_out)
        progress.tools_kept += 1
        if _same_tool_call(transformed, original):
            self._send_block(ctx, block, progress, tool_index=out_index)
        else:
            _send_built(
                ctx,
                create_tool_call_chunk(transformed, self._template(ctx), index=out_index),
                progress,
            )

    async def on_finish_reason(self, ctx: StreamingResponseContext) -> None:
        state = ctx.ingress_state
        progress = self._progress(ctx)
        reason = state.finish_reason or "stop"
        if reason == "tool_calls" and progress.tools_seen and not progress.tools_kept:
            reason = "stop"
        chunk = state.raw_chunks[-1]
        usage, delta, finish = read_chunk(chunk)
        role = field_of(delta, "role") if delta is not None else None
        pure = (
            finish == reason
            and not (delta is not None and _has_payload(delta))
            and not (progress.role_sent and role)
        )
        if pure:
            _send_original(ctx, chunk, role, progress)
        else:
            _send_built(ctx, create_finish_chunk(reason, self._template(ctx), usage), progress)
        progress.finish_sent = True
        for trailer in progress.held_trailers:
            ctx.egress_queue.put_nowait(trailer)
        progress.held_trailers.clear()

    async def on_stream_complete(self, ctx: StreamingResponseContext) -> None:
        progress = self._progress(ctx)
        for trailer in progress.held_trailers:
            ctx.egress_queue.put_nowait(trailer)
        progress.held_trailers.clear()

    # ----- non-streaming -----

    async def process_full_response(
        self, response: ModelResponse, context: PolicyContext
    ) -> ModelResponse:
        original = response
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
        if response.model_dump() == original.model_dump():
            return original  # nothing changed: the response as it came (sent as is)
        return response

    # ----- emission -----

    @staticmethod
    def _template(ctx: StreamingResponseContext) -> Any:
        return ctx.ingress_state.raw_chunks[0]

    async def _emit_original(
        self, ctx: StreamingResponseContext, chunk: Any, progress: _StreamProgress
    ) -> None:
        """Send an ingress chunk (a copy without its role when the role went out already)."""
        _usage, delta, _finish = read_chunk(chunk)
        role = field_of(delta, "role") if delta is not None and delta is not NO_CHOICES else None
        _send_original(ctx, chunk, role, progress)

    async def _emit_built(self, ctx: StreamingResponseContext, chunk: Any) -> None:
        """Send a chunk the policy built (with the role when none went out yet)."""
        _send_built(ctx, chunk, self._progress(ctx))

    async def _emit_block(
        self, ctx: StreamingResponseContext, block: StreamBlock, tool_index: int | None = None
    ) -> None:
        """Send what has not been sent of the block's original chunks."""
        self._send_block(ctx, block, self._progress(ctx), tool_index)

    @staticmethod
    def _send_block(
        ctx: StreamingResponseContext,
        block: StreamBlock,
        progress: _StreamProgress,
        tool_index: int | None = None,
    ) -> None:
        """Send the block's original chunks not sent yet; a chunk that also carries
        another block's data (or the finish reason, or a role already sent) goes out
        as a slice holding only this block's part."""
        indices = block.chunk_indices
        if not indices or block in progress.live:
            return  # empty, or streamed as it came: all of it went out already
        done = progress.sent.get(block)
        start = 0 if done is None else bisect_right(indices, done)
        if start >= len(indices):
            return
        raw = ctx.ingress_state.raw_chunks
        queue = ctx.egress_queue
        text_block = isinstance(block, ContentStreamBlock)
        for index in indices[start:]:
            chunk = raw[index]
            if text_block:
                text = read_text_only(chunk)
                if text is not None and not (text[1] and progress.role_sent):
                    progress.role_sent = True
                    queue.put_nowait(chunk)
                    continue
            _send_part(ctx, chunk, block, tool_index, progress)
        progress.sent[block] = indices[-1]


def _send_part(
    ctx: StreamingResponseContext,
    chunk: Any,
    block: StreamBlock,
    tool_index: int | None,
    progress: _StreamProgress,
) -> None:
    """Send ``block``'s part of ``chunk``: the chunk itself when that is all it holds."""
    piece, role = _slice_for_block(chunk, block, tool_index, progress.role_sent)
    if piece is chunk:
        _send_original(ctx, chunk, role, progress)
    else:
        _send_built(ctx, piece, progress)


def _send_original(
    ctx: StreamingResponseContext, chunk: Any, role: Any, progress: _StreamProgress
) -> None:
    if role and progress.role_sent:
        chunk = replace_delta(chunk, role=None)
    progress.role_sent = True
    ctx.egress_queue.put_nowait(chunk)


def _send_built(ctx: StreamingResponseContext, chunk: Any, progress: _StreamProgress) -> None:
    if not progress.role_sent:
        chunk.choices[0].delta.role = "assistant"
        progress.role_sent = True
    ctx.egress_queue.put_nowait(chunk)


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
) -> tuple[Any, Any]:
    """(``chunk`` itself when it holds only ``block``'s data, else a new chunk with
    just that; the chunk's role). Reads the chunk with the fast field readers."""
    _usage, delta, finish = read_chunk(chunk)
    if delta is None or delta is NO_CHOICES:
        return chunk, None
    reasoning, content, tool_calls, delta_role = read_delta_role(delta)
    role = None if role_sent else delta_role
    clean_role = not (role_sent and delta_role)
    if isinstance(block, ContentStreamBlock):
        if not reasoning and not tool_calls and not finish and clean_role:
            return chunk, delta_role
        return create_text_chunk(content or "", chunk, role=role), delta_role
    if isinstance(block, ThinkingStreamBlock):
        if not content and not tool_calls and not finish and clean_role:
            return chunk, delta_role
        return create_chunk(chunk, reasoning_content=reasoning or "", role=role), delta_role
    assert isinstance(block, ToolCallStreamBlock)
    tool_calls = tool_calls or ()
    mine = [tc for tc in tool_calls if field_of(tc, "index") == block.index]
    if (
        len(tool_calls) == 1
        and mine
        and not content
        and not reasoning
        and not finish
        and clean_role
        and tool_index == block.index
    ):
        return chunk, delta_role
    entries = []
    for tc in mine:
        function = field_of(tc, "function")
        entries.append(
            tool_call_delta(
                block.index if tool_index is None else tool_index,
                id=field_of(tc, "id"),
                name=field_of(function, "name") if function is not None else None,
                arguments=(field_of(function, "arguments") if function is not None else "") or "",
            )
        )
    return create_chunk(chunk, tool_calls=entries, role=role), delta_role
