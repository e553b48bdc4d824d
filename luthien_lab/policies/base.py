"""``Policy``: the hooks a policy can implement, and ``PolicyContext``.

Hook order
----------
For a request: ``on_request`` once, before the provider is called.

For a streaming response, per ingress chunk, in this order:

1. ``on_chunk_received`` — every chunk, including usage-only chunks with no choices.
2. For each block event the chunk caused, in stream order (a chunk can complete one
   block and start the next, or carry several tool calls):
   ``on_thinking_delta`` / ``on_content_delta`` / ``on_tool_call_delta`` for a delta
   (``ctx.ingress_state.current_block`` is the block, ``block.last_delta`` the new text),
   ``on_thinking_complete`` / ``on_content_complete`` / ``on_tool_call_complete`` for a
   completion (``ctx.ingress_state.just_completed`` is the block).
3. ``on_finish_reason`` — on the chunk that carries the finish reason, after the
   completion it causes.

After the last chunk: completions of a block still open, then ``on_stream_complete``.
For a non-streaming response: ``process_full_response`` once.

The thinking hooks are luthien-lab additions; the others are the seed design's.

What a hook may do
------------------
- Emit chunks with ``ctx.egress_queue`` or :mod:`luthien_lab.streaming.helpers`. The
  base class forwards nothing: a policy that overrides no hook sends an empty stream.
- Read ``ctx.ingress_state`` (blocks, raw chunks); treat ingress chunks as read-only
  (send a modified copy instead, so the raw stream stays recorded as it arrived).
- Keep per-transaction state in ``ctx.scratchpad``. One policy instance serves many
  concurrent streams; hooks of one stream never run concurrently with each other,
  but hooks of different streams interleave at every ``await``. State on ``self`` must
  be configuration only.
- Raise :class:`~luthien_lab.errors.RequestRefused` in ``on_request`` to refuse a
  request. Any other exception ends the stream with a
  :class:`~luthien_lab.errors.PolicyError` naming the hook and the transaction.
- ``on_request`` returns the request to send upstream: a new ``Request`` or the same one.

When the client gets what a hook sends
--------------------------------------
A stream is read by the task that consumes it (the ``async for`` over
``process_streaming_response``, the gateway's response): each upstream read fires its
hooks, and the chunks they put go out before the next read, with no hop between
tasks. Once one of the policy's streaming hooks waits (awaits real I/O, such as an LLM
judge's call) or a task the policy started puts a chunk, the rest of that stream, and
every later stream of the same orchestrator, is read by a task of its own, and each
chunk goes out the moment it is put, while a hook waits or the provider is silent
too. Until then (the first such stream), a chunk a hook put before it waited goes out
when the hook returns, and one put by the policy's own task, with the stream's next
read.

Time limits
-----------
- Every hook call (``on_request`` and ``process_full_response`` included) runs under a
  timeout, 60 s by default (``PolicyOrchestrator(hook_timeout=...)``, the gateway's
  ``gateway.hook_timeout``). A policy sets its own with a class or instance attribute
  ``hook_timeout`` (seconds, or None for no limit), which wins over both. A hook that
  runs longer is cancelled and its transaction fails with
  :class:`~luthien_lab.errors.HookTimeoutError` (a ``PolicyError`` naming the hook and
  the limit); the client gets a well-formed error, and nothing the hook sends after
  the limit.
- A hook shares the event loop with every other stream of the process: one that holds
  it (a blocking call such as ``time.sleep`` or ``requests.get``, heavy CPU work) for
  longer than ``hook_block_warning`` (0.1 s by default) in one go is logged and
  recorded as the event ``hook_blocked_event_loop``. Await I/O; run blocking or
  CPU-heavy work with ``asyncio.to_thread``. A hook that blocks cannot be interrupted:
  past its ``hook_timeout`` it fails when it returns.
- Emit only stream chunks (what :mod:`luthien_lab.streaming.chunks` builds):
  anything else put on ``ctx.egress_queue`` fails the transaction with a
  ``PolicyError`` naming the hook and what it put.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from luthien_lab.observability import NoOpObservabilityContext, ObservabilityContext

if TYPE_CHECKING:
    from litellm.types.utils import ModelResponse

    from luthien_lab.request import Request
    from luthien_lab.streaming.context import StreamingResponseContext

__all__ = [
    "BLOCKED_KEY",
    "STREAMING_HOOKS",
    "Policy",
    "PolicyContext",
    "mark_blocked",
    "policy_config",
    "policy_name",
]

BLOCKED_KEY = "luthien_lab.blocked"

STREAMING_HOOKS = (
    "on_chunk_received",
    "on_content_delta",
    "on_content_complete",
    "on_tool_call_delta",
    "on_tool_call_complete",
    "on_thinking_delta",
    "on_thinking_complete",
    "on_finish_reason",
    "on_stream_complete",
)


@dataclass(eq=False)
class PolicyContext:
    """Context for ``on_request`` and ``process_full_response``.

    ``transaction_id`` (``call_id`` in the seed), the client's ``request``, a
    per-transaction ``scratchpad`` shared with the streaming context, and
    ``observability``.
    """

    transaction_id: str
    request: Request
    scratchpad: dict[str, Any] = field(default_factory=dict)
    observability: ObservabilityContext = field(default_factory=NoOpObservabilityContext)
    span: Any = None

    @property
    def call_id(self) -> str:
        return self.transaction_id


class Policy:
    """Base class of every policy: every hook is an async no-op. See the module doc.

    Set ``hook_timeout`` (class or instance attribute: seconds, None for no limit) to
    give this policy's hooks a limit of their own (see "Time limits" above).
    """

    async def on_request(self, request: Request, context: PolicyContext) -> Request:
        """Return the request to send upstream (default: unchanged)."""
        return request

    async def on_chunk_received(self, ctx: StreamingResponseContext) -> None:
        """Every ingress chunk, first of the hooks for that chunk."""

    async def on_content_delta(self, ctx: StreamingResponseContext) -> None:
        """The content block grew by ``ctx.ingress_state.current_block.last_delta``."""

    async def on_content_complete(self, ctx: StreamingResponseContext) -> None:
        """The content block (``ctx.ingress_state.just_completed``) is complete."""

    async def on_tool_call_delta(self, ctx: StreamingResponseContext) -> None:
        """A tool-call block grew (arguments arrive as JSON fragments split anywhere)."""

    async def on_tool_call_complete(self, ctx: StreamingResponseContext) -> None:
        """A tool call is complete: its arguments are whole."""

    async def on_thinking_delta(self, ctx: StreamingResponseContext) -> None:
        """The thinking block grew."""

    async def on_thinking_complete(self, ctx: StreamingResponseContext) -> None:
        """The thinking block is complete."""

    async def on_finish_reason(self, ctx: StreamingResponseContext) -> None:
        """The provider sent ``ctx.ingress_state.finish_reason``."""

    async def on_stream_complete(self, ctx: StreamingResponseContext) -> None:
        """The ingress stream ended; last chance to emit."""

    async def process_full_response(
        self, response: ModelResponse, context: PolicyContext
    ) -> ModelResponse:
        """Non-streaming: return the response for the client (default: unchanged)."""
        return response


def policy_name(policy: Any) -> str:
    """``module.ClassName`` of a policy instance."""
    cls = type(policy)
    return f"{cls.__module__}.{cls.__qualname__}"


def policy_config(policy: Any) -> dict[str, Any]:
    """A JSON-friendly description of a policy's configuration, for recording.

    Uses ``policy.config`` when it is a pydantic model or dict, else the instance's
    public attributes of simple types.
    """
    config = getattr(policy, "config", None)
    if config is not None:
        if hasattr(config, "model_dump"):
            return dict(config.model_dump(mode="json"))
        if isinstance(config, dict):
            return dict(config)
    simple = (str, int, float, bool, type(None), list, tuple, dict)
    return {
        key: value
        for key, value in vars(policy).items()
        if not key.startswith("_") and isinstance(value, simple)
    }


def mark_blocked(context: Any, reason: str) -> None:
    """Record that the policy blocked something (``context`` is a
    ``StreamingResponseContext`` or ``PolicyContext``): the transaction's status becomes
    ``blocked``; the response still goes out as the policy shaped it."""
    context.scratchpad[BLOCKED_KEY] = reason
    context.observability.emit_event("blocked", {"reason": reason})
