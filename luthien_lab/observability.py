"""Seed abstractions for observability and recording, with no-op implementations.

``ObservabilityContext`` is what a policy sees as ``ctx.observability``: events,
metrics and span-like attributes, tied to the transaction. ``TransactionRecorder``
is the seed's per-transaction recorder interface. The DuckDB-backed
implementations live in :mod:`luthien_lab.store`; :class:`ListenerObservabilityContext`
forwards to the orchestrator's listeners, so whatever records the pipeline also
records what a policy emits.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from luthien_lab._listeners import Emitters, notify
from luthien_lab.events import EventEmitted, MetricRecorded

if TYPE_CHECKING:
    from litellm.types.utils import ModelResponse

    from luthien_lab.events import PipelineListener
    from luthien_lab.request import Request

__all__ = [
    "ListenerObservabilityContext",
    "NoOpObservabilityContext",
    "NoOpTransactionRecorder",
    "ObservabilityContext",
    "TransactionRecorder",
]


class ObservabilityContext(ABC):
    """What a policy can report about one transaction. Calls are cheap and synchronous."""

    transaction_id: str = ""

    @abstractmethod
    def emit_event(self, event_type: str, data: dict[str, Any] | None = None) -> None:
        """Record a named event with JSON-serialisable ``data``."""

    @abstractmethod
    def record_metric(self, name: str, value: float, labels: dict[str, Any] | None = None) -> None:
        """Record a numeric measurement."""

    @abstractmethod
    def add_span_attribute(self, key: str, value: Any) -> None:
        """Attach a key/value to the transaction (kept as its latest value)."""


class NoOpObservabilityContext(ObservabilityContext):
    """Drops everything."""

    def __init__(self, transaction_id: str = "") -> None:
        self.transaction_id = transaction_id

    def emit_event(self, event_type: str, data: dict[str, Any] | None = None) -> None:
        pass

    def record_metric(self, name: str, value: float, labels: dict[str, Any] | None = None) -> None:
        pass

    def add_span_attribute(self, key: str, value: Any) -> None:
        pass


class ListenerObservabilityContext(ObservabilityContext):
    """Forwards to the orchestrator's listeners (``event_emitted``/``metric_recorded``).

    ``listeners``: the listeners, or the transaction's :class:`Emitters` table (what
    the orchestrator passes: the same dispatch as every other event). Span
    attributes are kept in :attr:`attributes` and also reported as an event named
    ``span_attribute``.
    """

    def __init__(
        self, transaction_id: str, listeners: Sequence[PipelineListener] | Emitters
    ) -> None:
        self.transaction_id = transaction_id
        self.emitters = listeners if isinstance(listeners, Emitters) else Emitters(listeners)
        self.attributes: dict[str, Any] = {}

    @property
    def listeners(self) -> list[PipelineListener]:
        return list(self.emitters.listeners)

    def emit_event(self, event_type: str, data: dict[str, Any] | None = None) -> None:
        emitters = self.emitters.event_emitted
        if emitters:
            event = EventEmitted(
                self.transaction_id, event_type, dict(data or {}), time.perf_counter_ns()
            )
            notify(emitters, event)

    def record_metric(self, name: str, value: float, labels: dict[str, Any] | None = None) -> None:
        value = float(value)
        emitters = self.emitters.metric_recorded
        if emitters:
            event = MetricRecorded(
                self.transaction_id, name, value, dict(labels or {}), time.perf_counter_ns()
            )
            notify(emitters, event)

    def add_span_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value
        self.emit_event("span_attribute", {"key": key, "value": value})


class TransactionRecorder(ABC):
    """The seed's per-transaction recorder: requests, chunks, responses."""

    @abstractmethod
    def record_request(self, original: Request, final: Request) -> None:
        """The client's request and the one the policy sent upstream."""

    @abstractmethod
    def add_ingress_chunk(self, chunk: Any) -> None:
        """A chunk from the provider."""

    @abstractmethod
    def add_egress_chunk(self, chunk: Any) -> None:
        """A chunk the policy sent to the client."""

    @abstractmethod
    def finalize_streaming(self) -> None:
        """The stream ended: write what was gathered."""

    @abstractmethod
    def finalize_non_streaming(
        self, original_response: ModelResponse, final_response: ModelResponse
    ) -> None:
        """A non-streaming transaction ended: write both responses."""


class NoOpTransactionRecorder(TransactionRecorder):
    """Records nothing."""

    def record_request(self, original: Request, final: Request) -> None:
        pass

    def add_ingress_chunk(self, chunk: Any) -> None:
        pass

    def add_egress_chunk(self, chunk: Any) -> None:
        pass

    def finalize_streaming(self) -> None:
        pass

    def finalize_non_streaming(
        self, original_response: ModelResponse, final_response: ModelResponse
    ) -> None:
        pass
