"""What the local provider answers: :class:`ScriptedResponse` and fault parsing.

A script is protocol-neutral; ``_openai`` and ``_anthropic`` render it into the
wire format of each protocol (streaming SSE or one JSON body).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "FAULTS",
    "Fault",
    "ScriptedCitation",
    "ScriptedResponse",
    "ScriptedSearchResult",
    "ScriptedToolCall",
    "ScriptedWebSearch",
    "as_response",
    "default_response",
    "parse_fault",
]

DEFAULT_CHUNK_SIZE = 8

FaultName = Literal["http_429", "http_500", "drop", "stall", "malformed", "empty"]
FAULTS: tuple[str, ...] = ("http_429", "http_500", "drop", "stall", "malformed", "empty")


class ScriptedToolCall(BaseModel):
    """One tool call of a scripted answer.

    ``arguments`` is a dict (sent as compact JSON) or a raw string (sent verbatim, so
    a test can send invalid JSON). ``argument_chunks`` forces the exact fragments
    the arguments stream in; otherwise they are split every ``chunk_size`` characters.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)
    id: str | None = None
    argument_chunks: list[str] | None = None

    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, separators=(",", ":"), ensure_ascii=False)

    def arguments_dict(self) -> dict[str, Any]:
        if isinstance(self.arguments, dict):
            return self.arguments
        try:
            value = json.loads(self.arguments)
        except ValueError:
            return {"_raw": self.arguments}
        return value if isinstance(value, dict) else {"_value": value}

    def fragments(self, chunk_size: int) -> list[str]:
        if self.argument_chunks is not None:
            return list(self.argument_chunks)
        return split_text(self.arguments_json(), chunk_size)


def _digest(*parts: str, size: int = 24) -> str:
    """A short stable hex digest: scripted ids and opaque blobs are deterministic, so
    two runs of the same script put the same bytes on the wire."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:size]


class ScriptedSearchResult(BaseModel):
    """One result of a scripted web search (an Anthropic ``web_search_result``).

    ``encrypted_content`` is opaque on the real API; by default a stable digest of the
    url, so a client that echoes it back can be checked.
    """

    model_config = ConfigDict(extra="forbid")

    url: str
    title: str
    page_age: str | None = None
    encrypted_content: str | None = None

    def block(self) -> dict[str, Any]:
        return {
            "type": "web_search_result",
            "url": self.url,
            "title": self.title,
            "encrypted_content": self.encrypted_content or f"enc-local-{_digest(self.url)}",
            "page_age": self.page_age,
        }


class ScriptedWebSearch(BaseModel):
    """A server-side web search the scripted model ran before answering: an Anthropic
    ``server_tool_use`` block (``name="web_search"``, ``input={"query": ...}``) followed
    by its ``web_search_tool_result`` block. ``id`` defaults to a stable ``srvtoolu_...``.
    """

    model_config = ConfigDict(extra="forbid")

    query: str
    results: list[ScriptedSearchResult] = Field(default_factory=list)
    id: str | None = None

    def tool_use_id(self) -> str:
        return self.id or f"srvtoolu_{_digest(self.query, size=20)}"

    def input_json(self) -> str:
        return json.dumps({"query": self.query}, separators=(",", ":"), ensure_ascii=False)


class ScriptedCitation(BaseModel):
    """A ``web_search_result_location`` citation attached to the answer's text block.
    ``encrypted_index`` is opaque on the real API; by default a stable digest."""

    model_config = ConfigDict(extra="forbid")

    url: str
    cited_text: str
    title: str | None = None
    encrypted_index: str | None = None

    def block(self) -> dict[str, Any]:
        return {
            "type": "web_search_result_location",
            "cited_text": self.cited_text,
            "url": self.url,
            "title": self.title,
            "encrypted_index": self.encrypted_index
            or f"idx-local-{_digest(self.url, self.cited_text)}",
        }


class ScriptedResponse(BaseModel):
    """A protocol-neutral scripted answer of the local provider.

    Order on the wire: thinking, redacted thinking, web search (tool use, then its
    result), then text (or refusal, with its citations), then tool calls.

    - ``text`` / ``text_chunks``: the answer; ``text_chunks`` forces exact chunk
      boundaries (``["Open", "AI rocks"]``), otherwise ``text`` is split every
      ``chunk_size`` code points (deterministic).
    - ``thinking`` / ``thinking_chunks``: reasoning (Anthropic ``thinking`` block;
      ``reasoning_content`` deltas on the OpenAI protocol); ``signature`` defaults to a
      stable digest of the thinking.
    - ``redacted_thinking``: opaque ``data`` of Anthropic ``redacted_thinking`` blocks,
      one block each (not sent on the OpenAI protocol: no equivalent).
    - ``web_search``: see :class:`ScriptedWebSearch`; adds
      ``usage.server_tool_use.web_search_requests = 1`` (Anthropic only).
    - ``citations``: see :class:`ScriptedCitation`; attached to the text block
      (Anthropic only: Chat Completions has no per-block citations).
    - ``stop_sequence``: the model stopped on this stop sequence: Anthropic
      ``stop_reason="stop_sequence"`` with ``stop_sequence`` set; OpenAI ``stop``.
    - ``pings``: extra Anthropic ``ping`` events spread between the content events
      (the one after ``message_start`` is always sent); nothing on the OpenAI protocol.
    - ``tool_calls``: see :class:`ScriptedToolCall`. ``parallel_tool_calls=True``
      sends every tool call complete in ONE OpenAI delta (as OpenAI sometimes does).
    - ``refusal`` / ``refusal_chunks``: OpenAI ``refusal`` field; on Anthropic the text with
      ``stop_reason="refusal"``.
    - ``finish_reason``: OpenAI vocabulary (``stop``, ``length``, ``tool_calls``,
      ``content_filter``; ``stop_sequence`` too); default ``tool_calls`` when there are
      tool calls else ``stop``.
    - ``usage``: ``{"prompt_tokens": n, "completion_tokens": m}``; default counts words.
    - ``delay``: seconds slept before every streamed chunk (always honoured).
    - ``offsets``: recorded per-chunk time offsets (seconds since the request), honoured
      only when the provider's pacing is ``"original"``.
    - ``fault`` / ``fault_after`` / ``stall_seconds``: a fault (see :data:`FAULTS`)
      triggered after ``fault_after`` content chunks.
    """

    model_config = ConfigDict(extra="forbid")

    text: str = ""
    text_chunks: list[str] | None = None
    thinking: str = ""
    thinking_chunks: list[str] | None = None
    signature: str | None = None
    redacted_thinking: list[str] = Field(default_factory=list)
    web_search: ScriptedWebSearch | None = None
    citations: list[ScriptedCitation] = Field(default_factory=list)
    tool_calls: list[ScriptedToolCall] = Field(default_factory=list)
    parallel_tool_calls: bool = False
    refusal: str | None = None
    refusal_chunks: list[str] | None = None
    finish_reason: str | None = None
    stop_sequence: str | None = None
    pings: int = Field(default=0, ge=0)
    usage: dict[str, int] | None = None
    chunk_size: int = Field(default=DEFAULT_CHUNK_SIZE, ge=1)
    delay: float = Field(default=0.0, ge=0)
    offsets: list[float] | None = None
    model: str | None = None
    fault: str | None = None
    fault_after: int = Field(default=2, ge=0)
    stall_seconds: float = Field(default=30.0, ge=0)

    @field_validator("fault")
    @classmethod
    def _known_fault(cls, value: str | None) -> str | None:
        if value is not None and value not in FAULTS:
            raise ValueError(f"unknown fault {value!r}; choose one of {', '.join(FAULTS)}")
        return value

    @model_validator(mode="after")
    def _join_refusal(self) -> ScriptedResponse:
        if self.refusal is None and self.refusal_chunks:
            self.refusal = "".join(self.refusal_chunks)
        return self

    @model_validator(mode="after")
    def _citations_need_text(self) -> ScriptedResponse:
        # a citation belongs to a text block: without text there is nothing to cite on
        if self.citations and not (self.full_text() or self.refusal):
            raise ValueError("citations need text (or refusal) to attach to")
        return self

    # -- derived pieces ---------------------------------------------------------------
    def full_text(self) -> str:
        return "".join(self.text_chunks) if self.text_chunks is not None else self.text

    def full_thinking(self) -> str:
        return "".join(self.thinking_chunks) if self.thinking_chunks is not None else self.thinking

    def text_parts(self) -> list[str]:
        if self.text_chunks is not None:
            return [c for c in self.text_chunks]
        return split_text(self.text, self.chunk_size)

    def thinking_parts(self) -> list[str]:
        if self.thinking_chunks is not None:
            return list(self.thinking_chunks)
        return split_text(self.thinking, self.chunk_size)

    def refusal_parts(self) -> list[str]:
        if self.refusal_chunks is not None:
            return list(self.refusal_chunks)
        return split_text(self.refusal or "", self.chunk_size)

    def thinking_signature(self) -> str:
        if self.signature is not None:
            return self.signature
        digest = hashlib.sha256(self.full_thinking().encode()).hexdigest()[:32]
        return f"sig-local-{digest}"

    def openai_finish_reason(self) -> str:
        if self.finish_reason == "stop_sequence":
            return "stop"
        if self.finish_reason:
            return self.finish_reason
        if self.stop_sequence is not None:
            return "stop"
        return "tool_calls" if self.tool_calls else "stop"

    def anthropic_stop_reason(self) -> str:
        if self.refusal is not None and not self.finish_reason:
            return "refusal"
        if self.finish_reason == "stop_sequence" or (
            self.stop_sequence is not None and self.finish_reason in (None, "stop")
        ):
            return "stop_sequence"
        mapping = {
            "stop": "end_turn",
            "length": "max_tokens",
            "tool_calls": "tool_use",
            "content_filter": "refusal",
        }
        reason = self.openai_finish_reason()
        return mapping.get(reason, reason)

    def anthropic_stop_sequence(self) -> str | None:
        """The ``stop_sequence`` field: set only when the stop reason says so (as the
        real API does)."""
        return self.stop_sequence if self.anthropic_stop_reason() == "stop_sequence" else None

    def tool_call_id(self, index: int, protocol: str) -> str:
        call = self.tool_calls[index]
        if call.id:
            return call.id
        seed = f"{index}:{call.name}:{call.arguments_json()}"
        digest = hashlib.sha256(seed.encode()).hexdigest()[:20]
        return f"toolu_{digest}" if protocol == "anthropic" else f"call_{digest}"

    def usage_for(self, prompt_words: int) -> dict[str, int]:
        if self.usage:
            prompt = int(self.usage.get("prompt_tokens", self.usage.get("input_tokens", 0)))
            completion = int(
                self.usage.get("completion_tokens", self.usage.get("output_tokens", 0))
            )
        else:
            words = (
                len(self.full_text().split())
                + len(self.full_thinking().split())
                + len((self.refusal or "").split())
                + sum(1 + len(c.arguments_json()) // 4 for c in self.tool_calls)
                + (1 + len(self.web_search.query.split()) if self.web_search else 0)
            )
            prompt, completion = max(prompt_words, 1), max(words, 1)
        return {"prompt_tokens": prompt, "completion_tokens": completion}


def split_text(text: str, size: int) -> list[str]:
    """Split ``text`` every ``size`` code points (never inside a character)."""
    if not text:
        return []
    return [text[i : i + size] for i in range(0, len(text), size)]


def as_response(resp: ScriptedResponse | Mapping[str, Any] | str) -> ScriptedResponse:
    """A :class:`ScriptedResponse` from itself, its dict form, or a plain answer text."""
    if isinstance(resp, ScriptedResponse):
        return resp
    if isinstance(resp, str):
        return ScriptedResponse(text=resp)
    return ScriptedResponse.model_validate(dict(resp))


def default_response(prompt: str) -> ScriptedResponse:
    """The documented answer to a prompt nobody scripted: ``"Local echo: <prompt>"``."""
    text = f"Local echo: {prompt}" if prompt else "Local echo: (no prompt)"
    return ScriptedResponse(text=text)


@dataclass(frozen=True)
class Fault:
    """A fault to inject: ``name`` in :data:`FAULTS`, after ``after`` chunks."""

    name: str
    after: int = 2
    seconds: float = 30.0


def parse_fault(value: str, *, after: int = 2, seconds: float = 30.0) -> Fault:
    """Parse ``"drop"`` or ``"drop;after=3"`` or ``"stall;after=1;seconds=5"``."""
    parts = [p.strip() for p in value.split(";") if p.strip()]
    if not parts or parts[0] not in FAULTS:
        raise ValueError(f"unknown fault {value!r}; choose one of {', '.join(FAULTS)}")
    name = parts[0]
    for part in parts[1:]:
        key, _, raw = part.partition("=")
        key = key.strip()
        if key == "after":
            after = int(raw)
        elif key == "seconds":
            seconds = float(raw)
        else:
            raise ValueError(f"unknown fault parameter {key!r} in {value!r} (after=, seconds=)")
    return Fault(name=name, after=after, seconds=seconds)
