"""``GatePolicy``: a :class:`SimplePolicy` whose transforms can see the transaction.

``SimplePolicy``'s ``on_response_content`` / ``on_response_tool_call`` receive only
the request, but a policy that blocks something must call ``mark_blocked(ctx, ...)``
and emit events. ``GatePolicy`` makes the current context available to them through
:func:`current_context` (a ``ContextVar``, set for a hook's call and reset before it
returns: concurrent streams' hooks run in different tasks, or one after the other in
one, so they never see each other's context), and adds an optional message
telling the client that a tool call was blocked.

The message is appended to the response text, after the text the model wrote, in both
modes: streaming sends it as a text chunk after the blocked call, non-streaming
appends it to ``message.content``, so both give the same final response.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from luthien_lab.policies.base import mark_blocked
from luthien_lab.policies.simple import SimplePolicy
from luthien_lab.streaming.chunks import create_text_chunk

if TYPE_CHECKING:
    from litellm.types.utils import ModelResponse

    from luthien_lab.policies.base import PolicyContext
    from luthien_lab.streaming.context import StreamingResponseContext

__all__ = ["GatePolicy", "current_context"]


class _Scope:
    __slots__ = ("context", "notes")

    def __init__(self, context: Any) -> None:
        self.context = context
        self.notes: list[str] = []


_SCOPE: ContextVar[_Scope | None] = ContextVar("luthien_lab_gate_scope", default=None)


def current_context() -> Any:
    """The ``StreamingResponseContext`` or ``PolicyContext`` of the hook running now
    (None when a transform is called directly, outside a pipeline)."""
    scope = _SCOPE.get()
    return scope.context if scope is not None else None


class GatePolicy(SimplePolicy):
    """Base of the blocking built-ins. Subclasses call :meth:`block_tool_call` /
    :meth:`note_block` from their transforms; ``blocked_message`` (a format string
    with ``{name}`` and ``{reason}``), when set, tells the client about each blocked
    tool call."""

    blocked_message: str | None = None

    def note_block(self, reason: str, *, name: str = "", kind: str = "tool_call") -> None:
        """Mark the transaction blocked and queue the client message for a tool call."""
        scope = _SCOPE.get()
        if scope is None:
            return
        mark_blocked(scope.context, reason)
        if kind == "tool_call" and self.blocked_message:
            scope.notes.append(self.blocked_message.format(name=name, reason=reason))

    async def on_content_complete(self, ctx: StreamingResponseContext) -> None:
        token = _SCOPE.set(_Scope(ctx))
        try:
            await super().on_content_complete(ctx)
        finally:
            _SCOPE.reset(token)

    async def on_tool_call_complete(self, ctx: StreamingResponseContext) -> None:
        scope = _Scope(ctx)
        token = _SCOPE.set(scope)
        try:
            await super().on_tool_call_complete(ctx)
        finally:
            _SCOPE.reset(token)
        for note in scope.notes:
            await self._emit_built(ctx, create_text_chunk(note, self._template(ctx)))

    async def process_full_response(
        self, response: ModelResponse, context: PolicyContext
    ) -> ModelResponse:
        scope = _Scope(context)
        token = _SCOPE.set(scope)
        try:
            response = await super().process_full_response(response, context)
        finally:
            _SCOPE.reset(token)
        if scope.notes and response.choices:
            message = response.choices[0].message  # type: ignore[union-attr]
            message.content = (message.content or "") + "".join(scope.notes)
        return response
