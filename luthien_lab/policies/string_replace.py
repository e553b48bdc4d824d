"""``StringReplacePolicy``: replace strings in the response text while it streams.

A search string may be split across chunks anywhere ("Open" + "AI rocks"), so the
policy keeps back the end of the text that could still be the start of a match,
and emits everything before it at once. The hold-back is bounded: at most
``len(longest search) - 1`` characters, and only when they really are the start of
some search string. Replacement text is emitted, never scanned again (no double
replacement). The result equals replacing in the whole text, whatever the chunk
boundaries, and equals the non-streaming result.

Semantics (both modes): scan left to right; at each position the longest search
string that matches there wins; the scan resumes after the match.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, field_validator

from luthien_lab.policies._configurable import build_config
from luthien_lab.policies.base import Policy, PolicyContext
from luthien_lab.streaming.chunks import create_text_chunk, replace_delta
from luthien_lab.streaming.fields import (
    NO_CHOICES,
    is_lazy_trailer,
    read_chunk,
    read_delta,
    read_plain_event,
    read_text_only,
)

if TYPE_CHECKING:
    from litellm.types.utils import ModelResponse

    from luthien_lab.streaming.context import StreamingResponseContext

__all__ = ["StreamingReplacer", "StringReplacePolicy"]

_STATE_KEY = "luthien_lab.string_replace"


class StreamingReplacer:
    """The replacement engine, free of any streaming machinery (reusable, testable).

    ``feed(text)`` returns what can be emitted now; ``flush()`` the rest at the end.
    One replacer per stream (it holds the pending tail).
    """

    __slots__ = ("_engine", "_first", "_pending")

    def __init__(self, engine: _Engine) -> None:
        self._engine = engine
        self._first = engine.first.search  # per chunk: one lookup instead of three
        self._pending = ""

    def feed(self, text: str) -> str:
        if self._pending:
            text = self._pending + text
        elif self._first(text) is None:
            return text  # the usual chunk: no character that could start a search string
        out, self._pending = self._engine.take(text)
        return out

    def flush(self) -> str:
        out = self._engine.replace_all(self._pending) if self._pending else ""
        self._pending = ""
        return out

    @property
    def pending(self) -> str:
        return self._pending


class _Engine:
    """Compiled search patterns (shared by every stream of one policy: read-only)."""

    def __init__(self, pairs: list[tuple[str, str]], case_sensitive: bool) -> None:
        flags = 0 if case_sensitive else re.IGNORECASE
        # Longest first: the regex tries alternatives in order, so at one position the
        # longest search wins, as the module doc promises.
        ordered = sorted(pairs, key=lambda pair: -len(pair[0]))
        self.replacements = [replacement for _search, replacement in ordered]
        source = "|".join(f"({re.escape(s)})" for s, _ in ordered)
        self.pattern = re.compile(source, flags)
        # Any proper, non-empty prefix of a search string, anchored at the end of the
        # text: "abc" -> a(?:b)?\Z: where the rest of the text could still become a
        # match, and is held back. With the same flags, so case folding agrees.
        prefixes = [_prefix_pattern(s) for s, _ in ordered if len(s) > 1]
        # A character that could start a search string: text without one needs no look.
        self.first = re.compile(
            "[" + "".join(sorted({re.escape(s[0]) for s, _ in ordered})) + "]", flags
        )
        # Both in one search: at each position, first whether the rest of the text is
        # such a prefix (then a match there is not final yet: a longer search string
        # may win once more text comes), else the search strings, longest first. The
        # prefixes have no capture group, so a search string's group number is its
        # index + 1, as in `pattern`, and a held tail's match has none.
        tails = f"(?:{'|'.join(prefixes)})\\Z|" if prefixes else ""
        self.scan = re.compile(tails + source, flags)

    def replace_all(self, text: str) -> str:
        return self.pattern.sub(self._replacement, text)

    def _replacement(self, match: re.Match[str]) -> str:
        return self.replacements[(match.lastindex or 1) - 1]

    def take(self, text: str) -> tuple[str, str]:
        """(text to emit now, tail to hold back) of a text that more may follow. A match
        is final when no tail that could still grow into a match starts at or before it:
        nothing that arrives later can change the choice made there. One search per
        match, and one more only when text is left after it."""
        search = self.scan.search
        match = search(text)
        if match is None:
            return text, ""
        replacements = self.replacements
        end = len(text)
        out: list[str] = []
        position = 0
        while True:
            start = match.start()
            index = match.lastindex
            if index is None:  # the rest could still become a match: hold it back
                out.append(text[position:start])
                return "".join(out), text[start:]
            out.append(text[position:start])
            out.append(replacements[index - 1])
            position = match.end()
            match = search(text, position) if position < end else None
            if match is None:
                out.append(text[position:])
                return "".join(out), ""


def _prefix_pattern(search: str) -> str:
    body = ""
    for char in reversed(search[1:-1]):
        body = f"(?:{re.escape(char)}{body})?"
    return re.escape(search[0]) + body


class StringReplacePolicy(Policy):
    """Replace strings in the response text, while streaming.

    Config: ``replacements`` (``{search: replacement}``, at least one, no empty
    search), ``case_sensitive`` (default True). Tool calls and thinking pass through
    untouched. See the module doc for the streaming guarantees.
    """

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")

        replacements: dict[str, str]
        case_sensitive: bool = True

        @field_validator("replacements")
        @classmethod
        def _non_empty(cls, value: dict[str, str]) -> dict[str, str]:
            if not value:
                raise ValueError("give at least one search string")
            if "" in value:
                raise ValueError("a search string cannot be empty")
            return value

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        self.config = build_config(type(self), config, kwargs)
        self._engine = _Engine(list(self.config.replacements.items()), self.config.case_sensitive)

    def replace(self, text: str) -> str:
        """Replace in a whole text (what a finished stream amounts to)."""
        return self._engine.replace_all(text)

    def replacer(self) -> StreamingReplacer:
        """A fresh streaming replacer for one stream."""
        return StreamingReplacer(self._engine)

    # ----- streaming -----

    def _state(self, ctx: StreamingResponseContext) -> StreamingReplacer:
        state = ctx.scratchpad.get(_STATE_KEY)
        if state is None:
            state = ctx.scratchpad[_STATE_KEY] = self.replacer()
        return state

    async def on_chunk_received(self, ctx: StreamingResponseContext) -> None:
        # ingress_state without its property call (this runs per chunk); the
        # orchestrator sets the assembler before any hook runs.
        state = ctx.ingress_assembler.state  # type: ignore[union-attr]
        chunk = state.raw_chunks[-1]
        replacer = ctx.scratchpad.get(_STATE_KEY) or self._state(ctx)
        # The assembler's reading of this chunk, when it took it (it nearly always has).
        plain = state.text_only if state.text_only_of is chunk else read_text_only(chunk)
        if plain is not None:  # the common chunk: one text delta and nothing else
            text = plain[0]
            # Nothing held back and no character that could start a search string:
            # the chunk as it came, told without a call of feed (which would tell it so).
            if not replacer._pending and replacer._first(text) is None:
                ctx.egress_queue.put_nowait(chunk)
                return
            out = replacer.feed(text)
            if out == text:
                ctx.egress_queue.put_nowait(chunk)
            elif out or plain[1]:
                ctx.egress_queue.put_nowait(replace_delta(chunk, content=out))
            return
        payload = read_plain_event(chunk)  # read without waking a lazy chunk
        if payload is not None:
            finish, reasoning, text = payload
            other = bool(finish or reasoning)
        else:
            if is_lazy_trailer(chunk):
                delta = NO_CHOICES
            else:
                _usage, delta, finish = read_chunk(chunk)
            if delta is NO_CHOICES:  # usage trailer
                self._flush(ctx, replacer)
                ctx.egress_queue.put_nowait(chunk)
                return
            reasoning = text = tool_calls = None
            if delta is not None:
                reasoning, text, tool_calls = read_delta(delta)
            other = bool(finish or tool_calls or reasoning)
        if not text:
            if other:
                # The content block is over (tool calls or the finish follow it).
                self._flush(ctx, replacer)
            ctx.egress_queue.put_nowait(chunk)
            return
        out = replacer.feed(text) + replacer.flush()
        if out == text:
            ctx.egress_queue.put_nowait(chunk)
        else:
            ctx.egress_queue.put_nowait(replace_delta(chunk, content=out))

    # No on_content_complete: the chunk that ends the text (a finish, reasoning, tool
    # calls) flushes it in on_chunk_received, before that chunk goes out, which a
    # completion hook (run after it) could not; a stream cut short is flushed here.
    async def on_stream_complete(self, ctx: StreamingResponseContext) -> None:
        self._flush(ctx, self._state(ctx))

    @staticmethod
    def _flush(ctx: StreamingResponseContext, replacer: StreamingReplacer) -> None:
        # Not a coroutine: it runs up to four times per stream, nearly always with
        # nothing held back, and put_nowait is what the hooks use for every chunk.
        if replacer._pending:
            rest = replacer.flush()
            if rest:
                template = ctx.ingress_state.raw_chunks[0]
                ctx.egress_queue.put_nowait(create_text_chunk(rest, template))

    # ----- non-streaming -----

    async def process_full_response(
        self, response: ModelResponse, context: PolicyContext
    ) -> ModelResponse:
        texts = [choice.message.content for choice in response.choices]  # type: ignore[union-attr]
        replaced = [self.replace(text) if text else text for text in texts]
        if replaced == texts:
            return response  # nothing to replace: the response as it came (sent as is)
        response = response.model_copy(deep=True)
        for choice, text in zip(response.choices, replaced, strict=True):
            choice.message.content = text  # type: ignore[union-attr]
        return response
