"""``TraceListener``: fills :class:`TransactionTrace` objects from the orchestrator's
instrumentation (the same events the DuckDB recorder receives)."""

from __future__ import annotations

from collections.abc import Callable

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
from luthien_lab.runs._records import (
    ChunkRecord,
    HookRecord,
    chunk_payload,
    messages_of,
    summarize_response,
)
from luthien_lab.runs._trace import TransactionTrace

__all__ = ["TraceListener"]


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
        trace.original_messages = messages_of(event.original)
        trace.final_messages = messages_of(event.final)
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
