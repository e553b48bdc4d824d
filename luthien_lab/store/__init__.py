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
``duckdb.connect(path)``) makes the others wait; after ``lock_timeout`` they park
what they could not write (below) and try again, and a Store that cannot even open
raises :class:`~luthien_lab.errors.StoreLockedError`, naming the holder's PID (from the
sidecar, or from DuckDB's own lock error) and saying how to read the file
(``open_store(path, read_only=True)`` once the holder has closed it).

The same process may hold the file too: a notebook's ``duckdb.connect(path)`` is
written and read *through* (``_attach``: DuckDB's instance cache hands the Store a
connection to that instance); beside a ``duckdb.connect(path, read_only=True)`` the
Store still reads, and writes wait in the dead-letter file until that connection
closes (the recorder offers them again every second or so).

Nothing lost (``_writing``): a batch that fails is written one transaction at a
time, so a bad transaction never takes another with it. What cannot be stored as it
is (nested deeper than 128 levels, lone UTF-16 surrogates, strings over 16 Mi
characters, NaN) is stored in a safe form and says so in
``transactions.storage_notes`` (``_safe``, ``_rewrite``). A transaction that cannot be
written at all (the store busy, or every form refused) is kept in
``<file>.deadletter.jsonl`` beside the store and written the next time the store is
opened for writing (``_deadletter``). At exit, on SIGTERM and on Ctrl-C, open
recorders are closed, so every finished transaction is written (``_exit``).

Crash safety: every batch is one DB transaction, committed (durable in DuckDB's
write-ahead log) within about 200 ms of the end of the transactions it holds, the
first ones after start-up included (a recorder pays the first write's imports when
it is created; ``benchmarks/bench_durability.py``). The log replays on the next open,
and the kernel releases ``flock``/DuckDB locks of a killed process, so a SIGKILL
leaves a file that opens with every committed transaction.

Schema (numbered migrations, ``schema_version`` table; see ``_schema.MIGRATIONS``):
``transactions``, ``payloads`` (original/final request and response as JSON),
``chunks`` (a view: one row per ingress and per egress chunk, over ``chunk_rows``,
where a chunk passed through unchanged is one row carrying its egress index and
offset too), ``hooks``, ``events``, ``metrics``; ``transactions.storage_notes`` says
what was changed to store a transaction (NULL: nothing).
Credentials are replaced by ``[REDACTED]`` before anything is written, by key name and
by value (URL user information, ``Basic``/``Bearer`` credentials, ``sk-...`` keys): the
rule is in ``_redact``.
"""

from __future__ import annotations

from luthien_lab.store._observability import (
    DefaultObservabilityContext,
    DefaultTransactionRecorder,
)
from luthien_lab.store._recorder import DuckDBRecorder
from luthien_lab.store._recorder_for import recorder_for
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
    "recorder_for",
]
