"""``DuckDBRecorder``: the listener that records every transaction into a Store.

Hot path: each listener method appends plain values (and references to the live
chunk objects) to per-transaction columnar lists; nothing is serialised, nothing
touches the database. ``transaction_finished`` hands the transaction to one writer
thread, which builds one Arrow table per store table (``_tables``) and inserts them
all in a single DB transaction, batching transactions that finished close together.
(Extracting chunk fields while a stream still runs was tried: on two cores the writer
thread then competes with the event loop for the GIL and the pipeline's per-chunk
overhead with recording rose from ~1.5 to ~5 us, for a write only a little sooner.)
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import queue
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from luthien_lab.errors import StoreError
from luthien_lab.events import PipelineListener, TransactionInfo, TransactionResult
from luthien_lab.store._buffer import TxBuffer
from luthien_lab.store._store import Store
from luthien_lab.store._tables import build_tables

if TYPE_CHECKING:
    import os as _os

__all__ = ["DuckDBRecorder"]

log = logging.getLogger("luthien_lab.store")

_STOP = object()
_LIVE: weakref.WeakSet[DuckDBRecorder] = weakref.WeakSet()


@atexit.register
def _close_live_recorders() -> None:
    for recorder in list(_LIVE):
        try:
            recorder.close()
        except Exception:  # pragma: no cover - best effort at exit
            log.exception("closing a recorder at exit failed")


class DuckDBRecorder(PipelineListener):
    """Records every transaction the orchestrator reports into a :class:`Store`.

    ``DuckDBRecorder(store_or_path=None)``: a Store (not closed by the recorder) or a
    path (default ``$LUTHIEN_LAB_STORE`` / ``./luthien_lab.duckdb``; the recorder
    opens and closes that Store). Finished transactions are written in the
    background; :meth:`flush` waits for them, :meth:`close` flushes and stops.
    Credentials in requests, configs, errors and events are never written.
    """

    def __init__(self, store_or_path: Store | str | _os.PathLike[str] | None = None) -> None:
        if isinstance(store_or_path, Store):
            self.store = store_or_path
            self._owns_store = False
        else:
            self.store = Store(store_or_path)
            self._owns_store = True
        if self.store.read_only:
            raise StoreError(f"{self.store!r} is read-only: a recorder needs a writable store.")
        self._bufs: dict[str, TxBuffer] = {}
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._submitted = 0
        self._done = 0
        self._errors: list[BaseException] = []
        self._closed = False
        self.written_transactions = 0
        self.write_batches = 0
        self._writer = threading.Thread(target=self._run, name="luthien-lab-recorder", daemon=True)
        self._writer.start()
        _LIVE.add(self)

    # -- hot path ----------------------------------------------------------------

    def _orphan(self, transaction_id: str) -> TxBuffer:
        """Events for a transaction that never reported ``transaction_started``."""
        info = TransactionInfo(
            transaction_id=transaction_id,
            model="",
            provider="",
            policy_class="",
            policy_config={},
            streaming=True,
            start_ns=time.perf_counter_ns(),
        )
        buf = self._bufs[transaction_id] = TxBuffer(info)
        return buf

    def transaction_started(self, info: TransactionInfo) -> None:
        self._bufs[info.transaction_id] = TxBuffer(info)

    def request_processed(self, transaction_id: str, original: Any, final: Any) -> None:
        try:
            buf = self._bufs[transaction_id]
        except KeyError:
            buf = self._orphan(transaction_id)
        buf.original_request = original
        buf.final_request = final

    def chunk_received(self, transaction_id: str, index: int, chunk: Any, t_ns: int) -> None:
        try:
            buf = self._bufs[transaction_id]
        except KeyError:
            buf = self._orphan(transaction_id)
        buf.in_i.append(index)
        buf.in_c.append(chunk)
        buf.in_t.append(t_ns)

    def chunk_sent(self, transaction_id: str, index: int, chunk: Any, t_ns: int) -> None:
        try:
            buf = self._bufs[transaction_id]
        except KeyError:
            buf = self._orphan(transaction_id)
        buf.out_i.append(index)
        buf.out_c.append(chunk)
        buf.out_t.append(t_ns)

    def hook_fired(
        self,
        transaction_id: str,
        hook: str,
        chunk_index: int,
        block: Any,
        start_ns: int,
        end_ns: int,
        egress_start: int,
        egress_end: int,
    ) -> None:
        try:
            buf = self._bufs[transaction_id]
        except KeyError:
            buf = self._orphan(transaction_id)
        buf.h_hook.append(hook)
        buf.h_idx.append(chunk_index)
        if block is None:
            buf.h_kind.append(None)
            buf.h_id.append(None)
            buf.h_tool.append(None)
        else:
            kind = block.kind
            buf.h_kind.append(kind)
            buf.h_id.append(block.id)
            buf.h_tool.append(block.index if kind == "tool_call" else None)
        buf.h_start.append(start_ns)
        buf.h_end.append(end_ns)
        buf.h_es.append(egress_start)
        buf.h_ee.append(egress_end)

    def response_received(self, transaction_id: str, response: Any, t_ns: int) -> None:
        try:
            buf = self._bufs[transaction_id]
        except KeyError:
            buf = self._orphan(transaction_id)
        buf.resp_in = response
        buf.resp_in_t = t_ns

    def response_sent(self, transaction_id: str, response: Any, t_ns: int) -> None:
        try:
            buf = self._bufs[transaction_id]
        except KeyError:
            buf = self._orphan(transaction_id)
        buf.resp_out = response
        buf.resp_out_t = t_ns

    def event_emitted(
        self, transaction_id: str, name: str, data: dict[str, Any], t_ns: int
    ) -> None:
        try:
            buf = self._bufs[transaction_id]
        except KeyError:
            buf = self._orphan(transaction_id)
        buf.ev_name.append(name)
        buf.ev_data.append(data)
        buf.ev_t.append(t_ns)

    def metric_recorded(
        self,
        transaction_id: str,
        name: str,
        value: float,
        labels: dict[str, Any],
        t_ns: int,
    ) -> None:
        try:
            buf = self._bufs[transaction_id]
        except KeyError:
            buf = self._orphan(transaction_id)
        buf.m_name.append(name)
        buf.m_value.append(value)
        buf.m_labels.append(labels)
        buf.m_t.append(t_ns)

    def transaction_finished(self, transaction_id: str, result: TransactionResult) -> None:
        buf = self._bufs.pop(transaction_id, None)
        if buf is None:
            buf = TxBuffer(
                TransactionInfo(
                    transaction_id=transaction_id,
                    model="",
                    provider="",
                    policy_class="",
                    policy_config={},
                    streaming=True,
                    start_ns=result.end_ns,
                )
            )
        buf.result = result
        self._submit(buf)

    # -- hand-over and writer thread ----------------------------------------------

    def _submit(self, buf: TxBuffer) -> None:
        with self._cond:
            if self._closed:
                raise StoreError("this recorder is closed: it cannot record any more.")
            self._submitted += 1
        self._queue.put(buf)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in batch)
            txs = [item for item in batch if item is not _STOP]
            if txs:
                self._write_batch(txs)
            # Drop the written buffers now, not when the next batch rebinds these names:
            # freeing a 10,000-chunk transaction takes ~1 ms, which would otherwise be
            # paid at the start of the next write.
            del batch, txs
            if stop:
                return

    def _write_batch(self, txs: list[TxBuffer]) -> None:
        """Write ``txs`` in one DB transaction; a failure is logged and kept for
        :meth:`flush` to raise."""
        committed = False

        def on_commit(n: int = len(txs)) -> None:
            nonlocal committed
            committed = True
            self.written_transactions += n
            self.write_batches += 1
            self._mark_done(n)

        try:
            self.store.write_tables(build_tables(txs), on_commit=on_commit)
        except BaseException as exc:
            if not committed:
                log.error(
                    "luthien-lab could not write %d transaction(s) to %s: %s",
                    len(txs),
                    self.store.path,
                    exc,
                )
                with self._cond:
                    self._errors.append(exc)
                self._mark_done(len(txs))
            else:  # the data is committed; only closing the file failed
                log.warning("closing %s after a write failed: %s", self.store.path, exc)

    def _mark_done(self, n: int) -> None:
        with self._cond:
            self._done += n
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> None:
        """Block until every transaction finished so far is written; raise
        :class:`StoreError` if a write failed since the last flush."""
        with self._cond:
            target = self._submitted
            if not self._cond.wait_for(lambda: self._done >= target, timeout=timeout):
                raise StoreError(
                    f"flush timed out after {timeout}s with {target - self._done} "
                    f"transaction(s) still being written to {self.store.path}"
                )
            errors, self._errors = self._errors, []
        if errors:
            raise StoreError(
                f"{len(errors)} write(s) to {self.store.path} failed; first: {errors[0]}"
            ) from errors[0]

    async def flush_async(self, timeout: float | None = None) -> None:
        """:meth:`flush` without blocking the event loop."""
        await asyncio.to_thread(self.flush, timeout)

    @property
    def pending(self) -> int:
        """Transactions handed over but not yet written."""
        return self._submitted - self._done

    @property
    def in_flight(self) -> list[str]:
        """Ids of transactions started but not finished."""
        return list(self._bufs)

    def close(self) -> None:
        """Write unfinished transactions as ``cancelled``, flush, stop the writer thread
        and close the store if the recorder opened it."""
        with self._cond:
            if self._closed:
                return
        now = time.perf_counter_ns()
        for transaction_id in list(self._bufs):
            buf = self._bufs.pop(transaction_id)
            buf.result = TransactionResult(
                status="cancelled",
                end_ns=now,
                error="the recorder was closed before the transaction finished",
                error_type="RecorderClosed",
            )
            self._submit(buf)
        with self._cond:
            self._closed = True
        self._queue.put(_STOP)
        self._writer.join()
        _LIVE.discard(self)
        try:
            self.flush(timeout=0)
        finally:
            if self._owns_store:
                self.store.close()

    def __enter__(self) -> DuckDBRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
