"""The seed design's names, as thin adapters onto a :class:`DuckDBRecorder`.

``DefaultTransactionRecorder`` drives one transaction through the recorder's
listener methods (so it lands in the same buffers and tables as the orchestrator's
reports); ``DefaultObservabilityContext`` is what a policy's ``ctx.observability``
can be when something records outside the orchestrator.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from luthien_lab._ids import new_id
from luthien_lab.events import (
    ChunkEvent,
    EventEmitted,
    MetricRecorded,
    RequestProcessed,
    ResponseEvent,
    TransactionFinished,
    TransactionInfo,
    TransactionResult,
)
from luthien_lab.observability import ObservabilityContext, TransactionRecorder

if TYPE_CHECKING:
    from luthien_lab.request import Request
    from luthien_lab.store._recorder import DuckDBRecorder

__all__ = ["DefaultObservabilityContext", "DefaultTransactionRecorder"]


class DefaultObservabilityContext(ObservabilityContext):
    """``emit_event``/``record_metric``/``add_span_attribute`` into a recorder, tied to
    ``transaction_id``. Span attributes are kept in :attr:`attributes` and recorded as
    events named ``span_attribute``."""

    def __init__(self, recorder: DuckDBRecorder, transaction_id: str) -> None:
        self.recorder = recorder
        self.transaction_id = transaction_id
        self.attributes: dict[str, Any] = {}

    def emit_event(self, event_type: str, data: dict[str, Any] | None = None) -> None:
        self.recorder.event_emitted(
            EventEmitted(self.transaction_id, event_type, dict(data or {}), time.perf_counter_ns())
        )

    def record_metric(self, name: str, value: float, labels: dict[str, Any] | None = None) -> None:
        self.recorder.metric_recorded(
            MetricRecorded(
                self.transaction_id, name, float(value), dict(labels or {}), time.perf_counter_ns()
            )
        )

    def add_span_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value
        self.emit_event("span_attribute", {"key": key, "value": value})


class DefaultTransactionRecorder(TransactionRecorder):
    """Records one transaction into ``recorder`` (seed API).

    ``DefaultTransactionRecorder(recorder, info)`` or with keywords
    (``transaction_id``, ``model``, ``provider``, ``policy_class``, ``policy_config``,
    ``streaming``) to build the :class:`TransactionInfo`. ``finalize_*`` ends the
    transaction with status ``ok``; :meth:`fail` ends it with an error.
    """

    def __init__(
        self,
        recorder: DuckDBRecorder,
        info: TransactionInfo | None = None,
        *,
        transaction_id: str | None = None,
        model: str = "",
        provider: str = "",
        policy_class: str = "",
        policy_config: dict[str, Any] | None = None,
        streaming: bool = True,
    ) -> None:
        if info is None:
            info = TransactionInfo(
                transaction_id=transaction_id or new_id(),
                model=model,
                provider=provider,
                policy_class=policy_class,
                policy_config=dict(policy_config or {}),
                streaming=streaming,
                start_ns=time.perf_counter_ns(),
            )
        self.recorder = recorder
        self.info = info
        self.transaction_id = info.transaction_id
        self.observability = DefaultObservabilityContext(recorder, info.transaction_id)
        self._ingress: list[Any] = []
        self._egress: list[Any] = []
        self._finished = False
        recorder.transaction_started(info)

    def record_request(self, original: Request, final: Request) -> None:
        self.recorder.request_processed(RequestProcessed(self.transaction_id, original, final))

    def add_ingress_chunk(self, chunk: Any) -> None:
        self.recorder.chunk_received(
            ChunkEvent(self.transaction_id, len(self._ingress), chunk, time.perf_counter_ns())
        )
        self._ingress.append(chunk)

    def add_egress_chunk(self, chunk: Any) -> None:
        self.recorder.chunk_sent(
            ChunkEvent(self.transaction_id, len(self._egress), chunk, time.perf_counter_ns())
        )
        self._egress.append(chunk)

    def _finish(self, result: TransactionResult) -> None:
        if self._finished:
            raise RuntimeError(f"transaction {self.transaction_id} was already finalized")
        self._finished = True
        self.recorder.transaction_finished(TransactionFinished(self.transaction_id, result))

    def finalize_streaming(self) -> None:
        # The responses are rebuilt from the chunks by TransactionResult, lazily, in
        # the recorder's writer thread.
        self._finish(
            TransactionResult(
                status="ok",
                end_ns=time.perf_counter_ns(),
                ingress_chunks=self._ingress,
                egress_chunks=self._egress,
            )
        )

    def finalize_non_streaming(self, original_response: Any, final_response: Any) -> None:
        now = time.perf_counter_ns()
        self.recorder.response_received(ResponseEvent(self.transaction_id, original_response, now))
        self.recorder.response_sent(ResponseEvent(self.transaction_id, final_response, now))
        self._finish(
            TransactionResult(
                status="ok",
                end_ns=now,
                original_response=original_response,
                final_response=final_response,
            )
        )

    def fail(self, error: BaseException | str, status: str = "error") -> None:
        """End the transaction with ``status`` (``error``, ``cancelled``, ``blocked``)."""
        self._finish(
            TransactionResult(
                status=status,
                end_ns=time.perf_counter_ns(),
                error=str(error),
                error_type=type(error).__name__ if isinstance(error, BaseException) else None,
                ingress_chunks=self._ingress,
                egress_chunks=self._egress,
            )
        )
