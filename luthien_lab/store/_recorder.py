"""``DuckDBRecorder``: the listener that records every transaction into a Store.

Hot path: each listener method appends plain values (and references to the live
chunk objects) to per-transaction columnar lists; nothing is serialised, nothing
touches the database. ``transaction_finished`` hands the transaction to one writer
thread, which builds one Arrow table per store table (``_tables``) and inserts them
all in a single DB transaction, batching transactions that finished close together.
(Extracting chunk fields while a stream still runs was tried: on two cores the writer
thread then competes with the event loop for the GIL and the pipeline's per-chunk
overhead with recording rose from ~1.5 to ~5 us, for a write only a little sooner.)
How a batch that fails is still written, transaction by transaction, is ``_writing``;
what the store could not take waits in its dead-letter file (``_deadletter``), which
the writer offers again while it waits for the store; at exit the recorder is closed
(``_exit``).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

from luthien_lab.errors import StoreError
from luthien_lab.events import (
    ChunkEvent,
    EventEmitted,
    HookFired,
    MetricRecorded,
    PipelineListener,
    RequestProcessed,
    ResponseEvent,
    TransactionFinished,
    TransactionInfo,
    TransactionResult,
)
from luthien_lab.store._buffer import TxBuffer
from luthien_lab.store._exit import track, untrack
from luthien_lab.store._rewrite import describe
from luthien_lab.store._store import Store
from luthien_lab.store._writing import WriteReport, warm_up, write_batch

if TYPE_CHECKING:
    import os as _os

__all__ = ["DuckDBRecorder"]

log = logging.getLogger("luthien_lab.store")

_STOP = object()
RETRY_INTERVAL = 1.0  # seconds between offers of parked rows to a busy store
# How long an offer waits for another process's hold: new transactions wait meanwhile.
RETRY_LOCK_TIMEOUT = 0.25


class DuckDBRecorder(PipelineListener):
    """Records every transaction the orchestrator reports into a :class:`Store`.

    ``DuckDBRecorder(store_or_path=None)``: a Store (not closed by the recorder) or a
    path (default ``$LUTHIEN_LAB_STORE`` / ``./luthien_lab.duckdb``; the recorder
    opens and closes that Store). Finished transactions are written in the
    background, each committed within about 200 ms of its end; :meth:`flush` waits
    for them, :meth:`close` flushes and stops (at exit too). A transaction the store
    cannot take now (busy) is parked beside it (:attr:`parked`) and written later;
    one that cannot be written at all is reported by :meth:`flush`. Credentials in
    requests, configs, errors and events are never written.
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
        self._parked: set[str] = set()  # ids parked while the store was busy
        self.written_transactions = 0
        self.write_batches = 0
        # Paid here, once per process, not by the first transaction's write (bounded
        # durability, README): the first build imports pyarrow and NumPy.
        warm_up()
        self._writer = threading.Thread(target=self._run, name="luthien-lab-recorder", daemon=True)
        self._writer.start()
        track(self)

    # -- hot path ----------------------------------------------------------------

    def _buf(self, transaction_id: str) -> TxBuffer:
        """The transaction's buffer; a new one for events of a transaction that never
        reported ``transaction_started``."""
        buf = self._bufs.get(transaction_id)
        if buf is None:
            buf = self._bufs[transaction_id] = TxBuffer(
                _unknown(transaction_id, time.perf_counter_ns())
            )
        return buf

    def transaction_started(self, info: TransactionInfo) -> None:
        self._bufs[info.transaction_id] = TxBuffer(info)

    def request_processed(self, event: RequestProcessed) -> None:
        buf = self._buf(event.transaction_id)
        buf.original_request = event.original
        buf.final_request = event.final

    def chunk_received(self, event: ChunkEvent) -> None:
        buf = self._buf(event.transaction_id)
        buf.in_i.append(event.index)
        buf.in_c.append(event.chunk)
        buf.in_t.append(event.t_ns)

    def chunk_sent(self, event: ChunkEvent) -> None:
        buf = self._buf(event.transaction_id)
        buf.out_i.append(event.index)
        buf.out_c.append(event.chunk)
        buf.out_t.append(event.t_ns)

    def hook_fired(self, event: HookFired) -> None:
        buf = self._buf(event.transaction_id)
        buf.h_hook.append(event.hook)
        buf.h_idx.append(event.chunk_index)
        block: Any = event.block
        if block is None:
            buf.h_kind.append(None)
            buf.h_id.append(None)
            buf.h_tool.append(None)
        else:
            kind = block.kind
            buf.h_kind.append(kind)
            buf.h_id.append(block.id)
            buf.h_tool.append(block.index if kind == "tool_call" else None)
        buf.h_start.append(event.start_ns)
        buf.h_end.append(event.end_ns)
        buf.h_es.append(event.egress_start)
        buf.h_ee.append(event.egress_end)

    def response_received(self, event: ResponseEvent) -> None:
        buf = self._buf(event.transaction_id)
        buf.resp_in = event.response
        buf.resp_in_t = event.t_ns

    def response_sent(self, event: ResponseEvent) -> None:
        buf = self._buf(event.transaction_id)
        buf.resp_out = event.response
        buf.resp_out_t = event.t_ns

    def event_emitted(self, event: EventEmitted) -> None:
        buf = self._buf(event.transaction_id)
        buf.ev_name.append(event.name)
        buf.ev_data.append(event.data)
        buf.ev_t.append(event.t_ns)

    def metric_recorded(self, event: MetricRecorded) -> None:
        buf = self._buf(event.transaction_id)
        buf.m_name.append(event.name)
        buf.m_value.append(event.value)
        buf.m_labels.append(event.labels)
        buf.m_t.append(event.t_ns)

    def transaction_finished(self, event: TransactionFinished) -> None:
        result = event.result
        buf = self._bufs.pop(event.transaction_id, None)
        if buf is None:
            buf = TxBuffer(_unknown(event.transaction_id, result.end_ns))
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
            try:
                # While parked rows wait for a busy store, look again now and then.
                first = self._queue.get(timeout=RETRY_INTERVAL if self._parked else None)
            except queue.Empty:
                self._retry_parked()
                continue
            batch = [first]
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
            del batch, txs, first
            if stop:
                if self._parked:
                    self._retry_parked()
                return

    def _committed(self, n: int) -> None:
        self.written_transactions += n
        self.write_batches += 1
        self._mark_done(n)

    def _write_batch(self, txs: list[TxBuffer]) -> None:
        """Write ``txs`` (see ``_writing``); report what could not be written as it was."""
        try:
            report = write_batch(self.store, txs, self._committed)
        except BaseException as error:  # a bug: say so, and never leave flush() waiting
            log.exception("luthien-lab could not write %d transaction(s)", len(txs))
            report = WriteReport(lost=[(tx.info.transaction_id, describe(error)) for tx in txs])
        for tid, why in report.rewritten:
            log.warning(
                "transaction %s could not be stored as it was (%s); it was stored in a "
                "safe form, see its storage_notes in %s",
                tid,
                why,
                self.store.path,
            )
        if report.deferred:
            if not self._parked:
                log.warning(
                    "%d transaction(s) wait in %s: %s; they are written once the store "
                    "can be written",
                    len(report.deferred),
                    self.store.dead_letters.path or "memory",
                    report.deferred[0][1],
                )
            self._parked.update(tid for tid, _ in report.deferred)
        bad = report.failed + report.lost
        if bad:
            where = self.store.dead_letters.path or "memory"
            log.error(
                "luthien-lab could not write %d transaction(s) to %s (first: %s, %s)%s",
                len(bad),
                self.store.path,
                bad[0][0],
                bad[0][1],
                f"; kept in {where}" if report.failed else "",
            )
            with self._cond:
                self._errors.extend(StoreError(f"transaction {t}: {why}") for t, why in bad)
        self._mark_done(report.unwritten)
        if report.written and self._parked:
            self._retry_parked()

    def _retry_parked(self) -> None:
        """Offer the parked rows to the store again (the writer thread only)."""
        try:
            settled = self.store.replay_dead_letters(lock_timeout=RETRY_LOCK_TIMEOUT)
        except Exception as error:
            log.debug("replaying parked transactions failed: %s", describe(error))
            return
        if settled & self._parked:
            log.info("wrote %d parked transaction(s) to %s", len(settled), self.store.path)
        self._parked -= settled

    def _mark_done(self, n: int) -> None:
        with self._cond:
            self._done += n
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> None:
        """Block until every transaction finished so far is written (or, when the store
        cannot be written now, parked beside it to be written later: :attr:`parked`);
        raise :class:`StoreError` if one could not be written at all since the last
        flush."""
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
                f"{len(errors)} transaction(s) could not be written to {self.store.path}; "
                f"first: {errors[0]}"
            ) from errors[0]

    async def flush_async(self, timeout: float | None = None) -> None:
        """:meth:`flush` without blocking the event loop."""
        await asyncio.to_thread(self.flush, timeout)

    @property
    def pending(self) -> int:
        """Transactions handed over but not yet written (or parked)."""
        return self._submitted - self._done

    @property
    def parked(self) -> int:
        """Transactions this recorder parked because the store was busy, not yet
        written (they are retried every second or so, and on the next open)."""
        return len(self._parked)

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
        untrack(self)
        if self._parked:
            log.warning(
                "%d transaction(s) could not be written to %s before closing; they are "
                "kept in %s and written when the store is next opened",
                len(self._parked),
                self.store.path,
                self.store.dead_letters.path or "memory (lost when the process ends)",
            )
        try:
            self.flush(timeout=0)
        finally:
            if self._owns_store:
                self.store.close()

    def __enter__(self) -> DuckDBRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _unknown(transaction_id: str, start_ns: int) -> TransactionInfo:
    """What is known of a transaction whose ``transaction_started`` was never seen."""
    return TransactionInfo(
        transaction_id=transaction_id,
        model="",
        provider="",
        policy_class="",
        policy_config={},
        streaming=True,
        start_ns=start_ns,
    )
