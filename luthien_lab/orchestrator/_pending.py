"""``PendingTransactions``: transactions begun by ``process_request`` and not yet
continued, found again by id or by the identity of the request handed back."""

from __future__ import annotations

import weakref
from typing import Any

from luthien_lab.orchestrator._transaction import Transaction, as_request
from luthien_lab.request import Request

__all__ = ["PendingTransactions"]

_ABANDONED = (
    "abandoned: the request process_request returned was dropped without "
    "process_streaming_response/process_full_response"
)
_CANCELLED = "cancelled while pending: cancel_pending() after process_request"


class PendingTransactions:
    """Each parked transaction ends exactly once: taken (continued), abandoned (its
    handle was garbage-collected) or cancelled."""

    __slots__ = ("_by_handle", "_by_id")

    def __init__(self) -> None:
        self._by_id: dict[str, Transaction] = {}
        self._by_handle: dict[int, str] = {}  # id() of process_request's result -> its tx

    def __contains__(self, transaction_id: str) -> bool:
        return transaction_id in self._by_id

    def park(self, tx: Transaction, *, weak: bool) -> Request:
        """Keep ``tx`` until a ``process_*_response`` call continues it; returns the
        handle: a copy of the request to send, so that its identity names this
        transaction alone (listeners may hold the policy's own object)."""
        handle = tx.final.model_copy()
        tx.handle = weakref.ref(handle)
        tx.handle_key = id(handle)
        self._by_id[tx.tid] = tx
        self._by_handle[tx.handle_key] = tx.tid
        if weak:
            # The caller's reference is the only handle: when it goes, nothing can
            # continue the transaction any more, so it ends here.
            finalizer = weakref.finalize(handle, self.abandon, tx.tid)
            finalizer.atexit = False
            tx.finalizer = finalizer
        return handle

    def _unpark(self, tx: Transaction) -> None:
        self._by_id.pop(tx.tid, None)
        if self._by_handle.get(tx.handle_key) == tx.tid:
            del self._by_handle[tx.handle_key]
        if tx.finalizer is not None:
            tx.finalizer.detach()
            tx.finalizer = None

    def take(
        self, request: Request | dict[str, Any], transaction_id: str | None
    ) -> Transaction | None:
        """The pending transaction this call continues (by id, else by the identity
        of process_request's result), taken out of the pending set, with ``request``
        as its final request; or None."""
        if transaction_id is not None:
            tx = self._by_id.get(transaction_id)
        else:
            tid = self._by_handle.get(id(request))
            tx = self._by_id.get(tid) if tid is not None else None
            if tx is not None and (tx.handle is None or tx.handle() is not request):
                tx = None  # a new object at the address of a dead handle
        if tx is None:
            return None
        self._unpark(tx)
        try:
            final = as_request(request)
        except BaseException as error:
            tx.finish("error", error)
            raise
        if final._wire is None:
            final._wire = tx.final._wire
        tx.final = final
        return tx

    def abandon(self, transaction_id: str) -> None:
        """process_request's result was garbage-collected, never continued."""
        tx = self._by_id.get(transaction_id)
        if tx is not None:
            self._unpark(tx)
            tx.cancel(_ABANDONED)

    def cancel(self, transaction_id: str | None = None) -> int:
        """End pending transactions (one, or every one) as ``cancelled``; how many."""
        ids = [transaction_id] if transaction_id is not None else list(self._by_id)
        ended = 0
        for tid in ids:
            tx = self._by_id.get(tid)
            if tx is not None:
                self._unpark(tx)
                tx.cancel(_CANCELLED)
                ended += 1
        return ended
