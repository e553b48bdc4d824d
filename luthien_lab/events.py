"""The one instrumentation path: the orchestrator reports every step to listeners.

The DuckDB recorder, the live notebook widgets and any user callback are all
``PipelineListener`` subclasses; nothing else times hooks or watches chunks.

Ordering, per transaction (streaming)::

    transaction_started
    hook_fired("on_request")            # only when the policy overrides on_request
    request_processed(original, final)
    for each ingress chunk i:
        chunk_received(i, chunk)
        hook_fired(hook, i, block, ...)  # each hook the policy overrides, in firing order,
                                         # reported when the hook returns
        chunk_sent(j, chunk)             # interleaved: reported as the policy emits it
    hook_fired("on_stream_complete", n)  # n == number of ingress chunks
    transaction_finished(result)         # always, also on error or cancellation

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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litellm.types.utils import ModelResponse, ModelResponseStream

    from luthien_lab.request import Request
    from luthien_lab.streaming.blocks import StreamBlock

__all__ = [
    "CallbackListener",
    "PipelineListener",
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


class PipelineListener:
    """Base class of everything that watches the pipeline; every method is a no-op.

    Override only what you need: the orchestrator skips methods that are not
    overridden, so an unused event costs nothing.
    """

    def transaction_started(self, info: TransactionInfo) -> None:
        """A transaction began (before ``on_request``)."""

    def request_processed(self, transaction_id: str, original: Request, final: Request) -> None:
        """``on_request`` returned ``final`` for the client's ``original`` request."""

    def chunk_received(
        self, transaction_id: str, index: int, chunk: ModelResponseStream, t_ns: int
    ) -> None:
        """Ingress chunk number ``index`` arrived from the provider."""

    def hook_fired(
        self,
        transaction_id: str,
        hook: str,
        chunk_index: int,
        block: StreamBlock | None,
        start_ns: int,
        end_ns: int,
        egress_start: int,
        egress_end: int,
    ) -> None:
        """A policy hook ran for ingress chunk ``chunk_index`` (-1: not tied to a chunk)
        on ``block`` (None for chunk-level hooks) and emitted egress chunks
        ``egress_start`` up to, not including, ``egress_end``."""

    def chunk_sent(
        self, transaction_id: str, index: int, chunk: ModelResponseStream, t_ns: int
    ) -> None:
        """The policy emitted egress chunk number ``index``."""

    def response_received(self, transaction_id: str, response: ModelResponse, t_ns: int) -> None:
        """Non-streaming: the provider's full response arrived."""

    def response_sent(self, transaction_id: str, response: ModelResponse, t_ns: int) -> None:
        """Non-streaming: the policy's final response is ready for the caller."""

    def event_emitted(
        self, transaction_id: str, name: str, data: dict[str, Any], t_ns: int
    ) -> None:
        """A policy called ``ctx.observability.emit_event``."""

    def metric_recorded(
        self,
        transaction_id: str,
        name: str,
        value: float,
        labels: dict[str, Any],
        t_ns: int,
    ) -> None:
        """A policy called ``ctx.observability.record_metric`` (or set a span attribute,
        reported as an event named ``span_attribute``)."""

    def transaction_finished(self, transaction_id: str, result: TransactionResult) -> None:
        """The transaction ended: always called, on success, error, block or cancellation."""


LISTENER_METHODS = (
    "transaction_started",
    "request_processed",
    "chunk_received",
    "hook_fired",
    "chunk_sent",
    "response_received",
    "response_sent",
    "event_emitted",
    "metric_recorded",
    "transaction_finished",
)


def overridden(listener: PipelineListener, method: str) -> bool:
    """True when ``listener`` does something in ``method`` (it is not the base no-op)."""
    if isinstance(listener, CallbackListener):
        return True
    return getattr(type(listener), method, None) is not getattr(PipelineListener, method)


class CallbackListener(PipelineListener):
    """Calls ``callback(event_name, transaction_id, payload)`` for every event.

    Convenient in a notebook (``orchestrator.add_listener(CallbackListener(print))``);
    slower than a subclass, since it builds a payload dict per event.
    """

    def __init__(self, callback: Callable[[str, str, dict[str, Any]], None]):
        self.callback = callback

    def transaction_started(self, info: TransactionInfo) -> None:
        self.callback("transaction_started", info.transaction_id, {"info": info})

    def request_processed(self, transaction_id: str, original: Request, final: Request) -> None:
        self.callback("request_processed", transaction_id, {"original": original, "final": final})

    def chunk_received(
        self, transaction_id: str, index: int, chunk: ModelResponseStream, t_ns: int
    ) -> None:
        self.callback(
            "chunk_received", transaction_id, {"index": index, "chunk": chunk, "t_ns": t_ns}
        )

    def hook_fired(
        self,
        transaction_id: str,
        hook: str,
        chunk_index: int,
        block: StreamBlock | None,
        start_ns: int,
        end_ns: int,
        egress_start: int,
        egress_end: int,
    ) -> None:
        self.callback(
            "hook_fired",
            transaction_id,
            {
                "hook": hook,
                "chunk_index": chunk_index,
                "block": block,
                "start_ns": start_ns,
                "end_ns": end_ns,
                "egress_start": egress_start,
                "egress_end": egress_end,
            },
        )

    def chunk_sent(
        self, transaction_id: str, index: int, chunk: ModelResponseStream, t_ns: int
    ) -> None:
        self.callback("chunk_sent", transaction_id, {"index": index, "chunk": chunk, "t_ns": t_ns})

    def response_received(self, transaction_id: str, response: ModelResponse, t_ns: int) -> None:
        self.callback("response_received", transaction_id, {"response": response, "t_ns": t_ns})

    def response_sent(self, transaction_id: str, response: ModelResponse, t_ns: int) -> None:
        self.callback("response_sent", transaction_id, {"response": response, "t_ns": t_ns})

    def event_emitted(
        self, transaction_id: str, name: str, data: dict[str, Any], t_ns: int
    ) -> None:
        self.callback("event_emitted", transaction_id, {"name": name, "data": data, "t_ns": t_ns})

    def metric_recorded(
        self,
        transaction_id: str,
        name: str,
        value: float,
        labels: dict[str, Any],
        t_ns: int,
    ) -> None:
        self.callback(
            "metric_recorded",
            transaction_id,
            {"name": name, "value": value, "labels": labels, "t_ns": t_ns},
        )

    def transaction_finished(self, transaction_id: str, result: TransactionResult) -> None:
        self.callback("transaction_finished", transaction_id, {"result": result})
