"""``TransactionTrace``: one transaction as plain lists — the single source every view draws.

A :class:`TraceListener` fills traces from the orchestrator's instrumentation (the
same events the DuckDB recorder receives); :meth:`TransactionTrace.from_store` fills
one from a recording. Either way the views (timeline, diff, runner panes) read the
same fields and the same DataFrame columns as the store's ``hooks``/``chunks`` tables,
so a live run and a recorded one look alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from luthien_lab.events import (
    ChunkEvent,
    EventEmitted,
    HookFired,
    PipelineListener,
    RequestProcessed,
    ResponseEvent,
    TransactionFinished,
    TransactionInfo,
)
from luthien_lab.streaming.fields import NO_CHOICES, field_of, read_chunk, read_delta

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CHUNK_COLUMNS",
    "HOOK_COLUMNS",
    "ChunkRecord",
    "HookRecord",
    "TraceListener",
    "TransactionTrace",
    "chunk_payload",
    "summarize_response",
]

HOOK_COLUMNS = (
    "transaction_id",
    "seq",
    "hook",
    "chunk_index",
    "block_kind",
    "block_id",
    "tool_index",
    "start_offset_ns",
    "duration_ns",
    "egress_start",
    "egress_end",
)
CHUNK_COLUMNS = (
    "transaction_id",
    "direction",
    "chunk_index",
    "offset_ns",
    "content",
    "reasoning",
    "tool_calls",
    "finish_reason",
)


@dataclass(slots=True)
class ChunkRecord:
    """What a chunk carried, copied out of the live litellm object."""

    index: int
    offset_ns: int
    content: str | None = None
    reasoning: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: str | None = None

    def describe(self) -> str:
        """A short human description: the text delta, tool args or finish reason."""
        parts = []
        if self.reasoning:
            parts.append(f"thinking: {self.reasoning!r}")
        if self.content:
            parts.append(f"text: {self.content!r}")
        for call in self.tool_calls or []:
            name = call.get("name") or ""
            parts.append(f"tool[{call.get('index')}] {name}{call.get('arguments') or ''}".strip())
        if self.finish_reason:
            parts.append(f"finish: {self.finish_reason}")
        return "; ".join(parts) or "(empty)"


@dataclass(slots=True)
class HookRecord:
    """One hook firing, with times as offsets from the transaction's start."""

    seq: int
    hook: str
    chunk_index: int
    block_kind: str | None
    block_id: str | None
    tool_index: int | None
    start_offset_ns: int
    duration_ns: int
    egress_start: int
    egress_end: int


def chunk_payload(chunk: Any) -> tuple[str | None, str | None, list[dict[str, Any]] | None, Any]:
    """``(content, reasoning, tool_calls, finish_reason)`` of a litellm stream chunk.

    Runs for every chunk of a live run, so it reads fields the way the assembler does
    (:mod:`luthien_lab.streaming.fields`), not through pydantic's slow ``getattr``.
    """
    _usage, delta, finish_reason = read_chunk(chunk)
    if delta is NO_CHOICES:
        return None, None, None, None
    if delta is None:
        return None, None, None, finish_reason
    reasoning, content, raw_calls = read_delta(delta)
    calls = None
    if raw_calls:
        calls = []
        for call in raw_calls:
            function = field_of(call, "function")
            index = field_of(call, "index")
            calls.append(
                {
                    "index": 0 if index is None else index,
                    "id": field_of(call, "id"),
                    "name": field_of(function, "name") if function is not None else None,
                    "arguments": field_of(function, "arguments") if function is not None else None,
                }
            )
    return content, reasoning, calls, finish_reason


def _as_dict(obj: Any) -> Any:
    if obj is None or isinstance(obj, dict):
        return obj
    if hasattr(obj, "model_dump"):
        return obj.model_dump()
    if isinstance(obj, str):
        return json.loads(obj)
    return dict(obj)


def summarize_response(response: Any) -> dict[str, Any] | None:
    """Text, reasoning, tool calls, finish reason and refusal of a full response
    (a litellm ``ModelResponse`` or its JSON form as the store keeps it)."""
    data = _as_dict(response)
    if not data or not data.get("choices"):
        return None
    choice = data["choices"][0]
    message = choice.get("message") or {}
    calls = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        calls.append(
            {
                "id": call.get("id"),
                "name": function.get("name") or "",
                "arguments": function.get("arguments") or "",
            }
        )
    return {
        "text": message.get("content") or "",
        "reasoning": message.get("reasoning_content") or "",
        "tool_calls": calls,
        "finish_reason": choice.get("finish_reason"),
        "refusal": message.get("refusal"),
    }


def _messages(request: Any) -> list[dict[str, Any]]:
    data = _as_dict(request)
    return list((data or {}).get("messages") or [])


@dataclass
class TransactionTrace:
    """Everything the views need about one transaction."""

    transaction_id: str
    model: str = ""
    policy: str = ""
    streaming: bool = True
    start_ns: int = 0
    original_messages: list[dict[str, Any]] = field(default_factory=list)
    final_messages: list[dict[str, Any]] = field(default_factory=list)
    ingress: list[ChunkRecord] = field(default_factory=list)
    egress: list[ChunkRecord] = field(default_factory=list)
    hooks: list[HookRecord] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    status: str | None = None
    error: str | None = None
    error_type: str | None = None
    end_offset_ns: int | None = None
    original_response: dict[str, Any] | None = None
    final_response: dict[str, Any] | None = None
    first_egress_offset_ns: int | None = None
    version: int = 0

    @property
    def done(self) -> bool:
        return self.status is not None

    # -- text, as it stands now (live) or at the end --------------------------------

    @staticmethod
    def _text(records: list[ChunkRecord]) -> str:
        return "".join(r.content for r in records if r.content)

    @property
    def raw_text(self) -> str:
        if self.original_response is not None:
            return self.original_response["text"]
        return self._text(self.ingress)

    @property
    def text(self) -> str:
        if self.final_response is not None:
            return self.final_response["text"]
        return self._text(self.egress)

    # -- DataFrames with the store's columns -------------------------------------------

    def hooks_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [
            (
                self.transaction_id,
                h.seq,
                h.hook,
                h.chunk_index,
                h.block_kind,
                h.block_id,
                h.tool_index,
                h.start_offset_ns,
                h.duration_ns,
                h.egress_start,
                h.egress_end,
            )
            for h in self.hooks
        ]
        return pd.DataFrame(rows, columns=list(HOOK_COLUMNS))

    def chunks_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [
            (
                self.transaction_id,
                direction,
                r.index,
                r.offset_ns,
                r.content,
                r.reasoning,
                r.tool_calls,
                r.finish_reason,
            )
            for direction, records in (("ingress", self.ingress), ("egress", self.egress))
            for r in records
        ]
        return pd.DataFrame(rows, columns=list(CHUNK_COLUMNS))

    # -- from a recording -----------------------------------------------------------------

    @classmethod
    def from_store(cls, store: Any, transaction_id: str) -> TransactionTrace:
        """Rebuild a trace from a :class:`luthien_lab.store.Store` recording."""
        from luthien_lab.errors import StoreError

        info = store.sql("SELECT * FROM transactions WHERE transaction_id = ?", [transaction_id])
        if info.empty:
            raise StoreError(
                f"no transaction {transaction_id!r} in {store!r}; "
                "list them with store.transactions()"
            )
        row = info.iloc[0]
        trace = cls(
            transaction_id=transaction_id,
            model=str(row.get("model") or ""),
            policy=str(row.get("policy_class") or ""),
            streaming=bool(row.get("streaming")),
            status=row.get("status"),
            error=_none(row.get("error")),
            error_type=_none(row.get("error_type")),
        )
        duration = _none(row.get("duration_ms"))
        if duration is not None:
            trace.end_offset_ns = int(duration * 1e6)
        for h in store.hook_trace(transaction_id).itertuples(index=False):
            trace.hooks.append(
                HookRecord(
                    seq=int(h.seq),
                    hook=h.hook,
                    chunk_index=_int(h.chunk_index, -1),
                    block_kind=_none(h.block_kind),
                    block_id=_none(h.block_id),
                    tool_index=_none(h.tool_index) and int(h.tool_index),
                    start_offset_ns=_int(h.start_offset_ns, 0),
                    duration_ns=_int(h.duration_ns, 0),
                    egress_start=_int(h.egress_start, 0),
                    egress_end=_int(h.egress_end, 0),
                )
            )
        for c in store.chunks(transaction_id).itertuples(index=False):
            calls = _none(c.tool_calls)
            record = ChunkRecord(
                index=int(c.chunk_index),
                offset_ns=_int(c.offset_ns, 0),
                content=_none(c.content),
                reasoning=_none(c.reasoning),
                tool_calls=[dict(t) for t in calls] if calls is not None else None,
                finish_reason=_none(c.finish_reason),
            )
            (trace.ingress if c.direction == "ingress" else trace.egress).append(record)
        if trace.egress:
            trace.first_egress_offset_ns = trace.egress[0].offset_ns
        try:
            pair = store.response_pair(transaction_id)
        except KeyError:
            pair = None
        if pair is not None:
            trace.original_messages = _messages(pair.loc["original", "request"])
            trace.final_messages = _messages(pair.loc["final", "request"])
            trace.original_response = summarize_response(pair.loc["original", "response"])
            trace.final_response = summarize_response(pair.loc["final", "response"])
        for e in store.events(transaction_id).itertuples(index=False):
            data = e.data
            trace.events.append((e.name, json.loads(data) if isinstance(data, str) else data))
        return trace


def _none(value: Any) -> Any:
    """None for SQL NULL / pandas NA / NaN."""
    if value is None:
        return None
    try:
        import pandas as pd

        if not isinstance(value, list | tuple | dict) and pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def _int(value: Any, default: int) -> int:
    value = _none(value)
    return default if value is None else int(value)


class TraceListener(PipelineListener):
    """Collects transactions into :class:`TransactionTrace` objects.

    ``transaction_id``: follow only that transaction (what each run of the prompt
    runner does, so concurrent runs never mix); None follows every transaction.
    ``on_update(trace)`` is called after every event — keep it cheap (the runner
    only pokes its throttle there).
    """

    def __init__(
        self,
        transaction_id: str | None = None,
        on_update: Callable[[TransactionTrace], None] | None = None,
    ) -> None:
        self.transaction_id = transaction_id
        self.on_update = on_update
        self.traces: dict[str, TransactionTrace] = {}
        if transaction_id is not None:
            self.traces[transaction_id] = TransactionTrace(transaction_id)

    def __repr__(self) -> str:
        return f"<TraceListener following={self.transaction_id!r} traces={len(self.traces)}>"

    def _get(self, transaction_id: str) -> TransactionTrace | None:
        if self.transaction_id is not None and transaction_id != self.transaction_id:
            return None
        trace = self.traces.get(transaction_id)
        if trace is None:
            trace = self.traces[transaction_id] = TransactionTrace(transaction_id)
        return trace

    def _updated(self, trace: TransactionTrace) -> None:
        trace.version += 1
        if self.on_update is not None:
            self.on_update(trace)

    @property
    def trace(self) -> TransactionTrace:
        """The followed transaction (or the only/latest one)."""
        if self.transaction_id is not None:
            return self.traces[self.transaction_id]
        if not self.traces:
            raise LookupError("no transaction traced yet")
        return next(reversed(self.traces.values()))

    def transaction_started(self, info: TransactionInfo) -> None:
        trace = self._get(info.transaction_id)
        if trace is None:
            return
        trace.model = info.model
        trace.policy = info.policy_class
        trace.streaming = info.streaming
        trace.start_ns = info.start_ns
        self._updated(trace)

    def request_processed(self, event: RequestProcessed) -> None:
        trace = self._get(event.transaction_id)
        if trace is None:
            return
        trace.original_messages = _messages(event.original)
        trace.final_messages = _messages(event.final)
        self._updated(trace)

    def _chunk(self, trace: TransactionTrace, event: ChunkEvent) -> ChunkRecord:
        content, reasoning, calls, finish = chunk_payload(event.chunk)
        offset = event.t_ns - trace.start_ns
        return ChunkRecord(event.index, offset, content, reasoning, calls, finish)

    def chunk_received(self, event: ChunkEvent) -> None:
        trace = self._get(event.transaction_id)
        if trace is None:
            return
        trace.ingress.append(self._chunk(trace, event))
        self._updated(trace)

    def chunk_sent(self, event: ChunkEvent) -> None:
        trace = self._get(event.transaction_id)
        if trace is None:
            return
        record = self._chunk(trace, event)
        if trace.first_egress_offset_ns is None:
            trace.first_egress_offset_ns = record.offset_ns
        trace.egress.append(record)
        self._updated(trace)

    def hook_fired(self, event: HookFired) -> None:
        trace = self._get(event.transaction_id)
        if trace is None:
            return
        # Blocks are live objects that keep changing: copy the identifying bits now.
        block = event.block
        kind = getattr(block, "kind", None) if block is not None else None
        trace.hooks.append(
            HookRecord(
                seq=len(trace.hooks),
                hook=event.hook,
                chunk_index=event.chunk_index,
                block_kind=kind,
                block_id=getattr(block, "id", None) if block is not None else None,
                tool_index=getattr(block, "index", None) if kind == "tool_call" else None,
                start_offset_ns=event.start_ns - trace.start_ns,
                duration_ns=event.end_ns - event.start_ns,
                egress_start=event.egress_start,
                egress_end=event.egress_end,
            )
        )
        self._updated(trace)

    def response_received(self, event: ResponseEvent) -> None:
        trace = self._get(event.transaction_id)
        if trace is None:
            return
        trace.original_response = summarize_response(event.response)
        self._updated(trace)

    def response_sent(self, event: ResponseEvent) -> None:
        trace = self._get(event.transaction_id)
        if trace is None:
            return
        trace.final_response = summarize_response(event.response)
        if trace.first_egress_offset_ns is None:
            trace.first_egress_offset_ns = event.t_ns - trace.start_ns
        self._updated(trace)

    def event_emitted(self, event: EventEmitted) -> None:
        trace = self._get(event.transaction_id)
        if trace is None:
            return
        trace.events.append((event.name, dict(event.data)))
        self._updated(trace)

    def transaction_finished(self, event: TransactionFinished) -> None:
        trace = self._get(event.transaction_id)
        if trace is None:
            return
        result = event.result
        trace.end_offset_ns = result.end_ns - trace.start_ns
        if trace.streaming and result.ingress_chunks and trace.original_response is None:
            trace.original_response = summarize_response(result.original_response)
        if trace.streaming and result.egress_chunks and trace.final_response is None:
            trace.final_response = summarize_response(result.final_response)
        if trace.final_response is None and result.final_response is not None:
            trace.final_response = summarize_response(result.final_response)
        trace.error = result.error
        trace.error_type = result.error_type
        # Set last: ``done`` flips only once everything above is in place.
        trace.status = result.status
        self._updated(trace)
