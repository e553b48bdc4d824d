"""``StreamState``: everything the assembler knows about one response stream so far."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from luthien_lab.streaming.blocks import (
    ContentStreamBlock,
    StreamBlock,
    ThinkingStreamBlock,
    ToolCallStreamBlock,
)
from luthien_lab.streaming.fields import read_usage

if TYPE_CHECKING:
    from litellm.types.utils import ModelResponseStream

__all__ = ["StreamState"]


@dataclass(slots=True)
class StreamState:
    """The assembled view of an ingress stream.

    - ``blocks``: every block, in the order it started.
    - ``current_block``: the block the latest delta went to (set before each delta hook).
    - ``just_completed``: the block that completed most recently (set before each
      ``on_*_complete`` hook).
    - ``finish_reason``: the provider's finish reason once it arrived.
    - ``raw_chunks``: every ingress chunk, in order, unmodified except that Anthropic's
      empty ``content: ""`` on tool-call chunks is set to None.
    - ``last_emission_index``: how many raw chunks ``passthrough_accumulated_chunks``
      has already forwarded.
    - ``usage``: the last usage object seen (OpenAI's ``include_usage`` trailer, say).
    - ``text_only``: ``read_text_only`` of the chunk ``text_only_of`` (the latest one
      the assembler took): its (content, role) when text is its only payload, else
      None. Read once per chunk, so that hooks need not read the chunk again.
    """

    blocks: list[StreamBlock] = field(default_factory=list)
    current_block: StreamBlock | None = None
    just_completed: StreamBlock | None = None
    finish_reason: str | None = None
    raw_chunks: list[ModelResponseStream] = field(default_factory=list)
    last_emission_index: int = 0
    _usage: Any = None
    _usage_of: Any = None  # a lazy usage trailer whose usage is not read yet
    content_block: ContentStreamBlock | None = None
    thinking_block: ThinkingStreamBlock | None = None
    tool_blocks: dict[int, ToolCallStreamBlock] = field(default_factory=dict)
    text_only: tuple[str, Any] | None = None
    text_only_of: Any = None

    @property
    def usage(self) -> Any:
        """The last usage object seen (OpenAI's ``include_usage`` trailer, say)."""
        trailer = self._usage_of
        if trailer is not None:
            self._usage_of = None
            self._usage = read_usage(trailer)  # wakes it: the chunk's own usage object
        return self._usage

    @usage.setter
    def usage(self, value: Any) -> None:
        self._usage_of = None
        self._usage = value

    def usage_of(self, trailer: Any) -> None:
        """The usage is the one of ``trailer``, a lazy chunk (``fields.is_lazy_trailer``),
        read on the first read of :attr:`usage`: until then it stays lazy (and goes out
        as the upstream's own bytes)."""
        self._usage_of = trailer

    @property
    def tool_calls(self) -> list[ToolCallStreamBlock]:
        """Tool-call blocks in the order they started."""
        return [b for b in self.blocks if isinstance(b, ToolCallStreamBlock)]

    @property
    def content(self) -> str:
        """All content text so far ('' when there is none)."""
        return self.content_block.content if self.content_block is not None else ""
