"""The one instrumentation path: the orchestrator reports every step to listeners.

The DuckDB recorder, the live notebook widgets and any user callback are all
``PipelineListener`` subclasses; nothing else times hooks or watches chunks.

Each event is one frozen record (``HookFired``, ``ChunkEvent``...), so adding a field
touches the record alone. Ordering, per transaction (streaming)::

    transaction_started(info)
    hook_fired("on_request")            # only when the policy overrides on_request
    request_processed(original, final)
    for each ingress chunk i:
        chunk_received(i, chunk)
        hook_fired(hook, i, block, ...)  # each hook the policy overrides, in firing order,
                                         # reported when the hook returns
        chunk_sent(j, chunk)             # interleaved: reported as the policy emits it
    hook_fired("on_stream_complete", n)  # n == number of ingress chunks
    transaction_finished(result)         # always, also on error or cancellation

Events are dispatched in one place (:mod:`luthien_lab._listeners`).

Non-streaming replaces the chunk events by ``response_received`` and
``response_sent`` around ``hook_fired("process_full_response")``.

Rules for listeners:

* Methods are synchronous and run on the hot path, inside the event loop: append to
  memory and return. Anything slow (disk, network, rendering) happens later, in
  ``transaction_finished`` handed to a thread, or batched.
* Objects passed in (chunks, requests, responses, blocks) are live: do not mutate them.
  Blocks keep changing after the event; copy what you need (``block_kind``, ``block.id``).
* A listener that raises is logged (once per listener and event) and skipped; it
  never breaks the stream.
* All ``*_ns`` times come from :func:`time.perf_counter_ns`; subtract
  ``TransactionInfo.start_ns`` for the offset from the transaction's start.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litellm.types.utils import ModelResponse, ModelResponseStream

    from luthien_lab.request import Request
    from luthien_lab.streaming.blocks import StreamBlock

__all__ = [
    "EVENT_RECORDS",
    "CallbackListener",
    "ChunkEvent",
    "EventEmitted",
    "HookFired",
    "MetricRecorded",
    "PipelineListener",
    "RequestProcessed",
    "ResponseEvent",
    "TransactionFinished",
    "TransactionInfo",
    "TransactionResult",
    "TransactionStatus",
    "block_kind",
]

TransactionStatus = str
"""One of ``"ok"``, ``"error"``, ``"cancelled"``, ``"blocked"``."""


@dataclass(slots=True)
class TransactionInfo:
    """What is known when a transaction starts."""

    transaction_id: str
    model: str
    provider: str
    policy_class: str
    policy_config: dict[str, Any]
    streaming: bool
    start_ns: int
    started_at: _dt.datetime = field(default_factory=lambda: _dt.datetime.now(_dt.UTC))
    tags: dict[str, Any] = field(default_factory=dict)


class TransactionResult:
    """How a transaction ended.

    ``original_response``/``final_response`` are full ``ModelResponse`` objects, or
    None when the transaction failed before one existed. When streaming they are
    rebuilt from ``ingress_chunks``/``egress_chunks`` on first access, so that the
    work happens wherever a listener needs them (the recorder's writer thread), not
    on the stream's hot path.
    """

    __slots__ = (
        "_final",
        "_original",
        "egress_chunks",
        "end_ns",
        "error",
        "error_type",
        "ingress_chunks",
        "status",
    )

    def __init__(
        self,
        status: TransactionStatus,
        end_ns: int,
        error: str | None = None,
        error_type: str | None = None,
        original_response: ModelResponse | None = None,
        final_response: ModelResponse | None = None,
        ingress_chunks: list[Any] | None = None,
        egress_chunks: list[Any] | None = None,
    ) -> None:
        self.status = status
        self.end_ns = end_ns
        self.error = error
        self.error_type = error_type
        self.ingress_chunks = ingress_chunks or []
        self.egress_chunks = egress_chunks or []
        self._original = original_response
        self._final = final_response

    @property
    def ingress_chunk_count(self) -> int:
        return len(self.ingress_chunks)

    @property
    def egress_chunk_count(self) -> int:
        return len(self.egress_chunks)

    def prebuilt_responses(self) -> tuple[ModelResponse | None, ModelResponse | None]:
        """(original, final) as given or already rebuilt, without rebuilding anything:
        a listener that has its own view of the chunks can build them cheaper."""
        return self._original, self._final

    @property
    def original_response(self) -> ModelResponse | None:
        if self._original is None and self.ingress_chunks:
            from luthien_lab.streaming.reconstruct import reconstruct_full_response

            self._original = reconstruct_full_response(self.ingress_chunks)
        return self._original

    @property
    def final_response(self) -> ModelResponse | None:
        if self._final is None and self.egress_chunks:
            from luthien_lab.streaming.reconstruct import reconstruct_full_response

            self._final = reconstruct_full_response(self.egress_chunks)
        return self._final

    def __repr__(self) -> str:
        return (
            f"<TransactionResult {self.status} in={len(self.ingress_chunks)} "
            f"out={len(self.egress_chunks)} error={self.error!r}>"
        )


def block_kind(block: StreamBlock | None) -> str | None:
    """``"content"``, ``"tool_call"``, ``"thinking"`` or None: a stable name for storage."""
    return None if block is None else block.kind


@dataclass(frozen=True, slots=True)
class RequestProcessed:
    """``on_request`` returned ``final`` for the client's ``original`` request."""

    transaction_id: str
    original: Request
    final: Request


@dataclass(frozen=True, slots=True)
class ChunkEvent:
    """Chunk number ``index`` of one direction (``chunk_received``: from the provider;
    ``chunk_sent``: emitted by the policy), at ``t_ns``."""

    transaction_id: str
    index: int
    chunk: ModelResponseStream
    t_ns: int


@dataclass(frozen=True, slots=True)
class HookFired:
    """A policy hook ran for ingress chunk ``chunk_index`` (-1: not tied to a chunk) on
    ``block`` (None for chunk-level hooks) from ``start_ns`` to ``end_ns``, and emitted
    egress chunks ``egress_start`` up to, not including, ``egress_end``."""

    transaction_id: str
    hook: str
    chunk_index: int
    block: StreamBlock | None
    start_ns: int
    end_ns: int
    egress_start: int
    egress_end: int


@dataclass(frozen=True, slots=True)
class ResponseEvent:
    """Non-streaming: the provider's full response (``response_received``) or the
    policy's final one (``response_sent``), at ``t_ns``."""

    transaction_id: str
    response: ModelResponse
    t_ns: int


@dataclass(frozen=True, slots=True)
class EventEmitted:
    """A policy called ``ctx.observability.emit_event`` (or the orchestrator reported
    one, such as ``hook_blocked_event_loop``)."""

    transaction_id: str
    name: str
    data: dict[str, Any]
    t_ns: int


@dataclass(frozen=True, slots=True)
class MetricRecorded:
    """A policy called ``ctx.observability.record_metric``."""

    transaction_id: str
    name: str
    value: float
    labels: dict[str, Any]
    t_ns: int


@dataclass(frozen=True, slots=True)
class TransactionFinished:
    """The transaction ended, however: ``result`` says how."""

    transaction_id: str
    result: TransactionResult


class PipelineListener:
    """Base class of everything that watches the pipeline; every method is a no-op.

    Each method takes one event record (``transaction_started`` takes the
    :class:`TransactionInfo`). Override only what you need: the orchestrator skips
    methods that are not overridden, so an unused event costs nothing.

    Listeners written for the earlier positional signatures (``hook_fired(self,
    transaction_id, hook, chunk_index, ...)``) still work: a method that takes more
    than one argument gets the record's fields, in order (see :data:`EVENT_RECORDS`).
    """

    def transaction_started(self, info: TransactionInfo) -> None:
        """A transaction began (before ``on_request``)."""

    def request_processed(self, event: RequestProcessed) -> None:
        """``on_request`` returned ``event.final`` for the client's ``event.original``."""

    def chunk_received(self, event: ChunkEvent) -> None:
        """Ingress chunk number ``event.index`` arrived from the provider."""

    def hook_fired(self, event: HookFired) -> None:
        """A policy hook returned (see :class:`HookFired`)."""

    def chunk_sent(self, event: ChunkEvent) -> None:
        """The policy emitted egress chunk number ``event.index``."""

    def response_received(self, event: ResponseEvent) -> None:
        """Non-streaming: the provider's full response arrived."""

    def response_sent(self, event: ResponseEvent) -> None:
        """Non-streaming: the policy's final response is ready for the caller."""

    def event_emitted(self, event: EventEmitted) -> None:
        """A policy called ``ctx.observability.emit_event``."""

    def metric_recorded(self, event: MetricRecorded) -> None:
        """A policy called ``ctx.observability.record_metric`` (a span attribute is
        reported as an event named ``span_attribute``)."""

    def transaction_finished(self, event: TransactionFinished) -> None:
        """The transaction ended: always called, on success, error, block or cancellation."""


EVENT_RECORDS: dict[str, type] = {
    "transaction_started": TransactionInfo,
    "request_processed": RequestProcessed,
    "chunk_received": ChunkEvent,
    "hook_fired": HookFired,
    "chunk_sent": ChunkEvent,
    "response_received": ResponseEvent,
    "response_sent": ResponseEvent,
    "event_emitted": EventEmitted,
    "metric_recorded": MetricRecorded,
    "transaction_finished": TransactionFinished,
}
"""Each listener method and the record it takes, in the order of the events."""

LISTENER_METHODS = tuple(EVENT_RECORDS)


def overridden(listener: PipelineListener, method: str) -> bool:
    """True when ``listener`` does something in ``method`` (it is not the base no-op)."""
    if isinstance(listener, CallbackListener):
        return True
    return getattr(type(listener), method, None) is not getattr(PipelineListener, method)


class CallbackListener(PipelineListener):
    """Calls ``callback(event_name, transaction_id, payload)`` for every event;
    ``payload`` is a dict of the event record's other fields (``{"info": info}`` for
    ``transaction_started``).

    Convenient in a notebook (``orchestrator.add_listener(CallbackListener(print))``);
    slower than a subclass, since it builds a payload dict per event.
    """

    def __init__(self, callback: Callable[[str, str, dict[str, Any]], None]):
        self.callback = callback

    def _call(self, name: str, event: Any) -> None:
        payload = {key: getattr(event, key) for key in _PAYLOAD_FIELDS[type(event)]}
        self.callback(name, event.transaction_id, payload)

    def transaction_started(self, info: TransactionInfo) -> None:
        self.callback("transaction_started", info.transaction_id, {"info": info})

    def request_processed(self, event: RequestProcessed) -> None:
        self._call("request_processed", event)

    def chunk_received(self, event: ChunkEvent) -> None:
        self._call("chunk_received", event)

    def hook_fired(self, event: HookFired) -> None:
        self._call("hook_fired", event)

    def chunk_sent(self, event: ChunkEvent) -> None:
        self._call("chunk_sent", event)

    def response_received(self, event: ResponseEvent) -> None:
        self._call("response_received", event)

    def response_sent(self, event: ResponseEvent) -> None:
        self._call("response_sent", event)

    def event_emitted(self, event: EventEmitted) -> None:
        self._call("event_emitted", event)

    def metric_recorded(self, event: MetricRecorded) -> None:
        self._call("metric_recorded", event)

    def transaction_finished(self, event: TransactionFinished) -> None:
        self._call("transaction_finished", event)


_PAYLOAD_FIELDS = {
    record: tuple(f.name for f in fields(record) if f.name != "transaction_id")
    for record in set(EVENT_RECORDS.values())
}
