"""Streaming: what a policy's streaming hooks see, and the tools to answer with.

    from luthien_lab import Policy
    from luthien_lab.streaming import passthrough_last_chunk, send_text

    class Redact(Policy):
        async def on_content_delta(self, ctx):
            delta = ctx.ingress_state.current_block.last_delta
            if delta:
                await send_text(ctx, delta.replace("secret", "[redacted]"))

        async def on_finish_reason(self, ctx):
            await passthrough_last_chunk(ctx)  # the chunk carrying the finish reason

The provider's chunks are assembled into **blocks** (content, thinking, one per tool
call), kept in the stream's **state** (``ctx.ingress_state``); a hook gets the **context**
(``ctx``: the request, the state, a per-transaction ``scratchpad``, the egress queue).
The **helpers** send text, chunks and tool calls or pass ingress chunks through; the
**chunk builders** make well-formed chunks; the **field readers** read a chunk's fields
fast (litellm's attribute access is slow per chunk). The **assembler** and
**reconstruct** are what the orchestrator and the evaluators use: a policy rarely needs
them. Submodules: ``blocks``, ``state``, ``context``, ``assembler``, ``helpers``,
``chunks``, ``fields``, ``reconstruct``, ``lite`` (chunk objects without litellm).
"""

from luthien_lab.streaming.assembler import StreamingChunkAssembler
from luthien_lab.streaming.blocks import (
    ContentStreamBlock,
    StreamBlock,
    ThinkingStreamBlock,
    ToolCallStreamBlock,
)
from luthien_lab.streaming.chunks import (
    create_chunk,
    create_finish_chunk,
    create_role_chunk,
    create_text_chunk,
    create_thinking_chunk,
    create_tool_call_chunk,
    create_usage_chunk,
    replace_delta,
)
from luthien_lab.streaming.context import StreamingResponseContext
from luthien_lab.streaming.fields import (
    NO_CHOICES,
    field_of,
    is_lazy_trailer,
    read_chunk,
    read_delta,
    read_plain_event,
    read_text_only,
)
from luthien_lab.streaming.helpers import (
    get_last_ingress_chunk,
    passthrough_accumulated_chunks,
    passthrough_last_chunk,
    send_chunk,
    send_text,
    send_tool_call,
)
from luthien_lab.streaming.reconstruct import reconstruct_full_response
from luthien_lab.streaming.state import StreamState

# Grouped by what a reader looks for, not sorted (tests/test_public_api.py pins it).
__all__ = [  # noqa: RUF022
    # blocks: what the assembler builds out of chunks
    "StreamBlock",
    "ContentStreamBlock",
    "ThinkingStreamBlock",
    "ToolCallStreamBlock",
    # state: the stream so far (ctx.ingress_state)
    "StreamState",
    # context: what every streaming hook receives (ctx)
    "StreamingResponseContext",
    # helpers: answer from a hook
    "send_text",
    "send_chunk",
    "send_tool_call",
    "get_last_ingress_chunk",
    "passthrough_last_chunk",
    "passthrough_accumulated_chunks",
    # chunk builders
    "create_chunk",
    "create_text_chunk",
    "create_thinking_chunk",
    "create_tool_call_chunk",
    "create_role_chunk",
    "create_finish_chunk",
    "create_usage_chunk",
    "replace_delta",
    # field readers: a chunk's fields without litellm's slow attribute access
    "read_chunk",
    "read_delta",
    "read_plain_event",
    "is_lazy_trailer",
    "read_text_only",
    "field_of",
    "NO_CHOICES",
    # assembler and reconstruct: chunks -> blocks, chunks -> one full response
    "StreamingChunkAssembler",
    "reconstruct_full_response",
]
