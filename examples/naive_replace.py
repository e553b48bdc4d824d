"""A deliberately broken policy: replaces "OpenAI" inside each chunk's delta only.

It works on most recordings and fails as soon as a provider splits the word across
two chunks ("Open" + "AI"). ``check_chunk_invariance`` catches it::

    from luthien_lab.datasets import load_recordings
    from luthien_lab.evaluate import check_chunk_invariance
    from examples.naive_replace import NaiveReplacePolicy

    print(check_chunk_invariance(NaiveReplacePolicy(), load_recordings()))

Compare ``luthien_lab.policies.StringReplacePolicy``, which holds back a possible
partial match and passes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from luthien_lab import Policy

if TYPE_CHECKING:
    from luthien_lab import StreamingResponseContext

__all__ = ["NaiveReplacePolicy"]


class NaiveReplacePolicy(Policy):
    """Replaces ``search`` by ``replacement`` in every content delta, chunk by chunk."""

    def __init__(self, search: str = "OpenAI", replacement: str = "[REDACTED]"):
        self.search = search
        self.replacement = replacement

    async def on_chunk_received(self, ctx: StreamingResponseContext) -> None:
        chunk = ctx.ingress_state.raw_chunks[-1]
        delta = chunk.choices[0].delta if chunk.choices else None
        if delta is not None and delta.content and self.search in delta.content:
            # Never mutate an ingress chunk: send a modified copy.
            chunk = chunk.model_copy(deep=True)
            chunk.choices[0].delta.content = delta.content.replace(self.search, self.replacement)
        ctx.egress_queue.put_nowait(chunk)
