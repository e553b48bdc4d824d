"""``Transaction``: one transaction's bookkeeping from its start to its one end, and
what it reports to its listeners along the way (the one hook reporter included)."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import TYPE_CHECKING, Any

from luthien_lab._listeners import Emitters, notify
from luthien_lab.events import EventEmitted, HookFired, TransactionFinished, TransactionResult
from luthien_lab.observability import ListenerObservabilityContext
from luthien_lab.orchestrator._timing import BLOCKED_EVENT
from luthien_lab.request import Request

if TYPE_CHECKING:
    from luthien_lab.errors import RequestRefused
    from luthien_lab.events import TransactionInfo

__all__ = ["Transaction", "as_request", "status_of"]

_log = logging.getLogger("luthien_lab.orchestrator")


class Transaction:
    """One transaction between its start and its end (:meth:`finish`, exactly once).

    ``emit`` is the listener table it began with: it reports to those listeners to
    its end, whatever is added or removed meanwhile."""

    __slots__ = (
        "emit",
        "final",
        "finalizer",
        "finished",
        "handle",
        "handle_key",
        "info",
        "obs",
        "original",
        "refused",
        "scratchpad",
        "tid",
    )

    def __init__(self, info: TransactionInfo, emit: Emitters, original: Request):
        self.info = info
        self.tid = info.transaction_id
        self.emit = emit
        self.obs = ListenerObservabilityContext(self.tid, emit)
        self.original = original
        self.final: Request = original
        self.refused: RequestRefused | None = None
        self.scratchpad: dict[str, Any] = {}
        self.finished = False
        # While parked by process_request: the Request handed back to the caller
        # (weakly: the caller's reference is what keeps the transaction open when no
        # transaction_id was given), its id() and the finalizer that ends the
        # transaction if the caller drops it.
        self.handle: weakref.ref[Request] | None = None
        self.handle_key = 0
        self.finalizer: weakref.finalize[Any, Any] | None = None

    def report_hook(
        self, hook: str, index: int, block: Any, start: int, end: int, e0: int, e1: int
    ) -> None:
        """Hook ``hook`` returned: the one place hooks are reported."""
        emitters = self.emit.hook_fired
        if emitters:
            notify(emitters, HookFired(self.tid, hook, index, block, start, end, e0, e1))

    def hook_blocked(self, hook: str, blocked_ns: int, threshold: float | None) -> None:
        """A hook held the event loop for ``blocked_ns`` in one go: every other
        stream the process serves waited that long. Logged and reported."""
        policy = self.info.policy_class
        _log.warning(
            "policy hook %s.%s held the event loop for %.0f ms in one go (transaction %s; "
            "hook_block_warning %g ms): everything else this process serves waited. "
            "Await I/O instead of blocking on it; run blocking or CPU-heavy work with "
            "asyncio.to_thread",
            policy,
            hook,
            blocked_ns / 1e6,
            self.tid,
            (threshold or 0) * 1000,
        )
        data = {
            "hook": hook,
            "policy": policy,
            "blocked_ms": round(blocked_ns / 1e6, 3),
            "threshold_ms": None if threshold is None else round(threshold * 1000, 3),
        }
        if self.emit.event_emitted:
            event = EventEmitted(self.tid, BLOCKED_EVENT, data, time.perf_counter_ns())
            notify(self.emit.event_emitted, event)

    def finish(
        self,
        status: str,
        error: BaseException | None,
        *,
        ingress: list[Any] | None = None,
        egress: list[Any] | None = None,
        original_response: Any = None,
        final_response: Any = None,
    ) -> None:
        """End the transaction (a second call does nothing: it ends once, whichever
        path ends it) and report how."""
        if self.finished:
            return
        self.finished = True
        emitters = self.emit.transaction_finished
        if not emitters:
            return
        refusal = self.refused
        message = str(error) if error is not None else (refusal.reason if refusal else None)
        result = TransactionResult(
            status=status,
            end_ns=time.perf_counter_ns(),
            error=message,
            error_type=type(error).__name__ if error is not None else None,
            original_response=original_response,
            final_response=final_response,
            ingress_chunks=ingress,
            egress_chunks=egress,
        )
        notify(emitters, TransactionFinished(self.tid, result))

    def cancel(self, reason: str) -> None:
        self.finish("cancelled", asyncio.CancelledError(reason))


def as_request(request: Any) -> Request:
    if isinstance(request, Request):
        return request
    if isinstance(request, dict):
        return Request(**request)
    raise TypeError(
        "request must be a luthien_lab.Request or a dict in OpenAI chat format, "
        f"got {type(request).__name__}"
    )


def status_of(error: BaseException) -> str:
    if isinstance(error, asyncio.CancelledError | GeneratorExit | KeyboardInterrupt):
        return "cancelled"
    return "error"
