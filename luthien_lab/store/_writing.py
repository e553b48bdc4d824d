"""How a batch of finished transactions reaches the store without losing any.

The batch is built and written in one DB transaction (the fast path: one attach, one
bulk insert per table). When that fails, each transaction is tried on its own, so a
bad one never takes the others with it; one that fails alone is rewritten in a safe
form (``_rewrite.rewrite_safely``) and tried again, then cut to its minimal form;
every change is noted in its ``storage_notes``. When the store itself cannot be
written (busy: another process held it past ``lock_timeout``, or this process holds
it read-only), or a transaction failed in every form, its rows are parked in the
dead-letter file (``_deadletter``) and written later. Only a transaction whose rows
cannot even be built in the minimal form, or whose dead letter cannot be written,
is lost, and the log says which.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from luthien_lab.errors import StoreLockedError
from luthien_lab.store._buffer import TxBuffer
from luthien_lab.store._rewrite import describe, minimal_copy, rewrite_safely
from luthien_lab.store._tables import build_tables

if TYPE_CHECKING:
    import pyarrow as pa

    from luthien_lab.store._store import Store

__all__ = ["WriteReport", "warm_up", "write_batch"]

log = logging.getLogger("luthien_lab.store")

Committed = Callable[[int], None]
_warm = False


def warm_up() -> None:
    """Build (not write) the tables of a small made-up transaction, once per process:
    the first build imports pyarrow, pyarrow.compute, NumPy and (through pyarrow's
    first conversion) pandas, 0.4-0.8 s, which would otherwise delay the first real
    transaction's write. Only an optimisation: a failure here is left to the writes."""
    global _warm
    if _warm:
        return
    _warm = True
    try:
        build_tables([_made_up()])
    except Exception:
        log.debug("warming the recorder's write path up failed", exc_info=True)


def _made_up() -> TxBuffer:
    from luthien_lab.events import TransactionInfo, TransactionResult

    buf = TxBuffer(TransactionInfo("warm-up", "m", "p", "P", {"k": 1}, True, 0))
    chunks = [
        {"id": "c", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"content": t}}]}
        for t in ("a", "b")
    ]
    buf.in_i, buf.in_c, buf.in_t = [0, 1], chunks, [1, 2]
    buf.out_i, buf.out_c, buf.out_t = [0, 1], list(chunks), [3, 4]
    buf.h_hook, buf.h_idx, buf.h_kind = ["on_chunk_received"] * 2, [0, 1], [None, None]
    buf.h_id, buf.h_tool, buf.h_start, buf.h_end = [None, None], [None, None], [1, 2], [3, 4]
    buf.h_es, buf.h_ee = [0, 1], [1, 2]
    buf.result = TransactionResult("ok", 5, ingress_chunks=chunks, egress_chunks=chunks)
    return buf


@dataclass
class WriteReport:
    """What became of a batch, beyond the transactions committed (reported through
    the ``committed`` callback as they are)."""

    written: int = 0
    rewritten: list[tuple[str, str]] = field(default_factory=list)  # (id, why)
    deferred: list[tuple[str, str]] = field(default_factory=list)  # parked: store busy
    failed: list[tuple[str, str]] = field(default_factory=list)  # parked: unwritable
    lost: list[tuple[str, str]] = field(default_factory=list)  # not even parked

    @property
    def unwritten(self) -> int:
        return len(self.deferred) + len(self.failed) + len(self.lost)


def _try_write(store: Store, tables: dict[str, pa.Table], n: int, committed: Committed) -> None:
    """Write ``tables``; an error after the commit (closing the file) is only logged:
    the rows are durable by then."""
    done = False

    def on_commit() -> None:
        nonlocal done
        done = True
        committed(n)

    try:
        store.write_tables(tables, on_commit=on_commit)
    except Exception as error:
        if not done:
            raise
        log.warning("closing %s after a write failed: %s", store.path, describe(error))


def write_batch(store: Store, txs: list[TxBuffer], committed: Committed) -> WriteReport:
    """Write ``txs``; see the module docstring."""
    report = WriteReport()
    try:
        tables = build_tables(txs)
        _try_write(store, tables, len(txs), committed)
        report.written = len(txs)
        return report
    except StoreLockedError as locked:
        _park(store, tables, [tx.info.transaction_id for tx in txs], locked, report)
        return report
    except Exception as error:  # one of them, or the store: find out one by one
        log.info(
            "a write of %d transaction(s) to %s failed (%s); writing them one by one",
            len(txs),
            store.path,
            describe(error),
        )
    busy: StoreLockedError | None = None
    for tx in txs:
        busy = _write_one(store, tx, committed, report, busy)
    return report


def _write_one(
    store: Store,
    buf: TxBuffer,
    committed: Committed,
    report: WriteReport,
    busy: StoreLockedError | None,
) -> StoreLockedError | None:
    """Write ``buf`` alone, in the first form that works. Once the store said it is
    busy (``busy``), only park it: each try would wait ``lock_timeout`` again.
    Returns the busy error, if there was one."""
    tid = str(buf.info.transaction_id)
    error: Exception | None = None
    built: dict[str, pa.Table] | None = None
    for stage in ("as it is", "rewritten", "minimal"):
        try:
            if stage == "rewritten":
                assert error is not None
                rewrite_safely(buf, error)
            elif stage == "minimal":
                assert error is not None
                buf = minimal_copy(buf, error)
            built = build_tables([buf])
            if busy is not None:
                raise busy
            _try_write(store, built, 1, committed)
        except StoreLockedError as locked:
            assert built is not None  # only a write says the store is busy
            _park(store, built, [tid], locked, report)
            return locked
        except Exception as failure:
            error = failure
            continue
        report.written += 1
        if error is not None:
            report.rewritten.append((tid, f"{stage}: {describe(error)}"))
        return busy
    assert error is not None
    if built is None:
        report.lost.append((tid, describe(error)))
    else:
        _park(store, built, [tid], error, report)
    return busy


def _park(
    store: Store,
    tables: dict[str, pa.Table],
    ids: list[str],
    error: Exception,
    report: WriteReport,
) -> None:
    busy = isinstance(error, StoreLockedError)
    why = describe(error)
    try:
        store.dead_letters.park(tables, error=why, reason="deferred" if busy else "failed")
    except Exception as again:
        report.lost.extend((tid, f"{why}; parking it failed: {describe(again)}") for tid in ids)
        return
    (report.deferred if busy else report.failed).extend((tid, why) for tid in ids)
