"""Stream blocks: what the assembler builds out of chunks.

A response streams as a sequence of blocks: at most one content block, thinking
blocks, and one tool-call block per provider tool-call index. Each block
accumulates its deltas until it completes (the next block starts or the stream
finishes).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

__all__ = ["ContentStreamBlock", "StreamBlock", "ThinkingStreamBlock", "ToolCallStreamBlock"]


class StreamBlock:
    """Base of all blocks.

    ``id``: stable identifier; ``is_complete``: set when the block ends;
    ``last_delta``: the text this block gained from the most recent chunk;
    ``chunk_indices``: the ingress chunks that contributed to it, in order, each once.
    """

    kind: ClassVar[str] = "block"
    __slots__ = ("chunk_indices", "id", "is_complete", "last_delta")

    def __init__(self, id: str) -> None:
        self.id = id
        self.is_complete = False
        self.last_delta = ""
        self.chunk_indices: list[int] = []

    def __repr__(self) -> str:
        state = "complete" if self.is_complete else "open"
        return f"<{type(self).__name__} {self.id!r} {state}>"


class _TextBlock(StreamBlock):
    """A block of text deltas. ``content`` joins them on demand: appending to one
    growing ``str`` per chunk would copy the whole text each time."""

    __slots__ = ("_joined", "_parts")

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self._parts: list[str] = []
        self._joined: str | None = ""

    def append(self, text: str) -> None:
        self._parts.append(text)
        self._joined = None
        self.last_delta = text

    @property
    def content(self) -> str:
        joined = self._joined
        if joined is None:
            joined = self._joined = "".join(self._parts)
            self._parts = [joined] if joined else []
        return joined

    @content.setter
    def content(self, value: str) -> None:
        self._parts = [value] if value else []
        self._joined = value


class ContentStreamBlock(_TextBlock):
    """The assistant's text. There is at most one per response."""

    kind: ClassVar[str] = "content"
    __slots__ = ()

    def __init__(self, id: str = "content") -> None:
        super().__init__(id)


class ThinkingStreamBlock(_TextBlock):
    """Reasoning/thinking text. Kept apart so that it never leaks into the content."""

    kind: ClassVar[str] = "thinking"
    __slots__ = ("signature",)

    def __init__(self, id: str = "thinking") -> None:
        super().__init__(id)
        self.signature: str | None = None


class ToolCallStreamBlock(StreamBlock):
    """One tool call, keyed by the provider's tool-call ``index``.

    ``arguments`` is the raw JSON text accumulated so far, not parsed: it is only
    valid JSON once the block is complete. Use :attr:`parsed_arguments` then.
    """

    kind: ClassVar[str] = "tool_call"
    __slots__ = ("arguments", "index", "lite", "name")

    def __init__(
        self, id: str, index: int, name: str = "", arguments: str = "", lite: bool = False
    ) -> None:
        super().__init__(id)
        self.index = index
        self.name = name
        self.arguments = arguments
        # Whether the stream's chunks are litellm-free objects: then so is tool_call,
        # and reading it never imports litellm (seconds, inside a hook).
        self.lite = lite

    @property
    def parsed_arguments(self) -> Any:
        """The arguments parsed as JSON ({} when empty); raises ValueError if malformed."""
        return json.loads(self.arguments) if self.arguments.strip() else {}

    @property
    def tool_call(self) -> Any:
        """The block as a litellm ``ChatCompletionMessageToolCall``, or its litellm-free
        equivalent (same fields) when the stream's chunks are litellm-free or litellm
        is not imported in a process that prefers those."""
        from luthien_lab.streaming import lite

        if not self.lite and lite.use_litellm():
            from luthien_lab.clients._litellm import litellm_types

            types = litellm_types()
            return types.ChatCompletionMessageToolCall(
                id=self.id,
                type="function",
                function=types.Function(name=self.name, arguments=self.arguments),
            )
        return lite.ToolCall(
            function=lite.Function(arguments=self.arguments, name=self.name),
            id=self.id,
            type="function",
        )
