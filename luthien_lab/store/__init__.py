"""Recording to DuckDB, and querying the recordings.

Usage::

    from luthien_lab.store import DuckDBRecorder, open_store

    recorder = DuckDBRecorder()            # $LUTHIEN_LAB_STORE or ./luthien_lab.duckdb
    orchestrator.add_listener(recorder)
    ...
    recorder.flush()
    store = recorder.store
    store.transactions(status="error")     # pandas DataFrames
    store.chunks(tx_id, direction="egress")
    store.hook_trace(tx_id); store.events(tx_id); store.metrics(); store.response_pair(tx_id)
    store.sql("SELECT ... FROM chunks WHERE ...", [params])
    store.export_all("export/")            # one Parquet file per table

Location: ``open_store(path)`` / ``DuckDBRecorder(path)``; with no path,
``$LUTHIEN_LAB_STORE``, else ``./luthien_lab.duckdb``. A directory path means
``<dir>/luthien_lab.duckdb``. ``":memory:"`` (``Store.memory()``) is a private,
in-memory store for tests.

Several processes, one file
---------------------------
DuckDB lets one process at a time open a file for writing (and none may read it
meanwhile). So a Store holds the file only while it works: each recorder batch write
and each query attaches the file to the Store's private in-memory DuckDB instance
(about 1 ms), works, and detaches it (a write's detach checkpoints the file), under
a sidecar lock file ``<file>.lock`` (``flock``: exclusive to write, shared to read).
The notebook, the gateway and any other luthien-lab process can therefore record to
and query the same file at once: they take turns, waiting (up to ``lock_timeout``,
default 30 s) instead of failing. The recorder's single writer thread batches every
transaction that finished while the previous batch was being written, so attaching
and checkpointing cost once per batch, not per transaction.

A process that keeps the file open (``Store(path, exclusive=True)``, or a plain
``duckdb.connect(path)``) makes the others wait; after ``lock_timeout`` they raise
:class:`~luthien_lab.errors.StoreLockedError`, naming the holder's PID (from the
sidecar, or from DuckDB's own lock error) and saying how to read the file
(``open_store(path, read_only=True)`` once the holder has closed it).

Crash safety: every batch is one DB transaction; DuckDB's write-ahead log replays
on the next open, and the kernel releases ``flock``/DuckDB locks of a killed
process, so a SIGKILL leaves a file that opens with every flushed transaction.

Schema (numbered migrations, ``schema_version`` table; see ``_schema.MIGRATIONS``):
``transactions``, ``payloads`` (original/final request and response as JSON),
``chunks`` (a view: one row per ingress and per egress chunk, over ``chunk_rows``,
where a chunk passed through unchanged is one row carrying its egress index and
offset too), ``hooks``, ``events``, ``metrics``.
Credentials (API keys, Authorization and other credential headers, tokens,
secrets, passwords) are replaced by ``[REDACTED]`` before anything is written.
"""

from __future__ import annotations

from luthien_lab.store._observability import (
    DefaultObservabilityContext,
    DefaultTransactionRecorder,
)
from luthien_lab.store._recorder import DuckDBRecorder
from luthien_lab.store._redact import REDACTED
from luthien_lab.store._schema import MIGRATIONS, SCHEMA_VERSION
from luthien_lab.store._store import (
    DEFAULT_FILENAME,
    ENV_VAR,
    Store,
    default_store_path,
    open_store,
)

__all__ = [
    "DEFAULT_FILENAME",
    "ENV_VAR",
    "MIGRATIONS",
    "REDACTED",
    "SCHEMA_VERSION",
    "DefaultObservabilityContext",
    "DefaultTransactionRecorder",
    "DuckDBRecorder",
    "Store",
    "default_store_path",
    "open_store",
]
