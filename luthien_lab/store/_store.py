"""``Store``: where recordings live, and the queries over them."""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from luthien_lab.errors import StoreError
from luthien_lab.store._locking import SidecarLock, holder_from_duckdb_error, locked_error
from luthien_lab.store._schema import (
    RAW_CHUNK_SQL,
    TABLES,
    WRITE_TABLES,
    current_version,
    migrate,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["DEFAULT_FILENAME", "ENV_VAR", "Store", "default_store_path", "open_store"]

ENV_VAR = "LUTHIEN_LAB_STORE"
DEFAULT_FILENAME = "luthien_lab.duckdb"
MEMORY = ":memory:"
_ALIAS = "luthien_store"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def default_store_path() -> str:
    """``$LUTHIEN_LAB_STORE`` if set, else ``./luthien_lab.duckdb``."""
    return os.environ.get(ENV_VAR) or DEFAULT_FILENAME


def _resolve(path: str | os.PathLike[str] | None) -> str:
    raw = os.fspath(path) if path is not None else default_store_path()
    if raw == MEMORY:
        return MEMORY
    resolved = Path(raw).expanduser()
    if resolved.is_dir() or raw.endswith(("/", os.sep)):
        resolved.mkdir(parents=True, exist_ok=True)
        resolved = resolved / DEFAULT_FILENAME
    resolved.parent.mkdir(parents=True, exist_ok=True)
    return str(resolved.resolve())


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc)
    return "lock" in text.lower() and ("Conflicting" in text or "Could not set lock" in text)


class Store:
    """A DuckDB database of recorded transactions, and queries returning DataFrames.

    ``Store(path)`` (default: :func:`default_store_path`) opens or creates the file and
    migrates it to the current schema. By default it holds the file only while it works:
    every query and every write attaches the file to a private in-memory DuckDB
    instance (one for queries, one for writes), works and detaches it, under a
    sidecar lock, so that several processes (the notebook, the gateway) can record to
    and read the same file.
    ``exclusive=True`` keeps one connection open for the Store's life instead (faster,
    but other processes then wait and fail with :class:`StoreLockedError`).
    ``read_only=True`` never writes. ``Store.memory()`` is a private in-memory store.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        read_only: bool = False,
        exclusive: bool = False,
        lock_timeout: float = 30.0,
    ) -> None:
        import duckdb

        self._duckdb = duckdb
        self.path = _resolve(path)
        self.read_only = read_only
        self.lock_timeout = lock_timeout
        self.is_memory = self.path == MEMORY
        self.exclusive = exclusive or self.is_memory
        self._mutex = threading.RLock()
        self._con: Any = None
        # Shared mode: private in-memory instances the file is attached to, one for
        # reading ("read") and one for writing ("write").
        self._hosts: dict[str, Any] = {}
        self._host_pid = 0
        self._lock_fd: int | None = None
        self._closed = False
        self._sidecar = None if self.is_memory else SidecarLock(self.path)
        if self.is_memory:
            if read_only:
                raise StoreError("an in-memory store cannot be read-only: it starts empty.")
            self._con = duckdb.connect(MEMORY)
            migrate(self._con)
            return
        if read_only and not os.path.exists(self.path):
            raise StoreError(
                f"no store at {self.path}: record something first, or open it without "
                "read_only=True to create it."
            )
        if self.exclusive:
            assert self._sidecar is not None
            self._lock_fd = self._sidecar.acquire(exclusive=not read_only, timeout=lock_timeout)
            try:
                self._con = self._connect(read_only=read_only, start=time.monotonic())
                if not read_only:
                    migrate(self._con)
            except BaseException:
                self._release()
                raise
        elif not read_only:
            with self._connection(write=True) as con:
                migrate(con)

    @classmethod
    def memory(cls) -> Store:
        """A fresh in-memory store (tests, throwaway experiments)."""
        return cls(MEMORY)

    # -- connections -------------------------------------------------------------

    def _connect(self, *, read_only: bool, start: float) -> Any:
        return self._retry_locked(
            lambda: self._duckdb.connect(self.path, read_only=read_only), start=start
        )

    def _retry_locked(self, open_it: Callable[[], Any], *, start: float) -> Any:
        """``open_it()``, retried while DuckDB says another process holds the file."""
        delay = 0.002
        while True:
            try:
                return open_it()
            except self._duckdb.Error as exc:
                if not _is_lock_error(exc):
                    raise StoreError(f"could not open the store {self.path}: {exc}") from exc
                waited = time.monotonic() - start
                if waited >= self.lock_timeout:
                    pid = holder_from_duckdb_error(str(exc))
                    holder = f"PID {pid}" if pid else str(exc)
                    raise locked_error(self.path, holder, waited=waited) from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.05)

    def _attach(self, *, read_only: bool, start: float) -> Any:
        """A cursor on this Store's in-memory DuckDB instance with the file attached
        and selected (``USE``): attaching costs ~1 ms where opening a new DuckDB
        instance on the file costs ~14 ms, and detaching releases the file for other
        processes just as closing does."""
        if self._host_pid != os.getpid():
            # A forked child must not touch its parent's instances: make its own.
            self._hosts, self._host_pid = {}, os.getpid()
        role = "read" if read_only else "write"
        host = self._hosts.get(role)
        if host is None:
            # Writes run on one thread: one thread inserts a bulk of rows faster than
            # two (measured: ~30%) and leaves the other core to the event loop. An
            # instance of their own keeps it so without resizing a thread pool per
            # write (1-2 ms), and leaves queries all the threads.
            config: dict[str, str | bool | int | float | list[str]] = (
                {} if read_only else {"threads": 1}
            )
            host = self._hosts[role] = self._duckdb.connect(MEMORY, config=config)
        cursor = host.cursor()
        try:
            cursor.execute(f"DETACH DATABASE IF EXISTS {_ALIAS}")
            quoted = self.path.replace("'", "''")
            mode = " (READ_ONLY)" if read_only else ""
            self._retry_locked(
                lambda: cursor.execute(f"ATTACH '{quoted}' AS {_ALIAS}{mode}"), start=start
            )
            cursor.execute(f"USE {_ALIAS}")
        except BaseException:
            cursor.close()
            raise
        return cursor

    @staticmethod
    def _detach(cursor: Any) -> None:
        try:
            cursor.execute("USE memory")
            cursor.execute(f"DETACH DATABASE {_ALIAS}")  # checkpoints, releases the file
        finally:
            cursor.close()

    @contextlib.contextmanager
    def _connection(self, *, write: bool = False) -> Iterator[Any]:
        """A connection for one unit of work (a query or a batch write)."""
        if self._closed:
            raise StoreError(f"the store {self.path} is closed.")
        if write and self.read_only:
            raise StoreError(f"the store {self.path} was opened read-only: it cannot record.")
        if self.exclusive:
            with self._mutex:
                yield self._con
            return
        assert self._sidecar is not None
        start = time.monotonic()
        # One attachment at a time per Store: DuckDB attaches a file once per instance.
        with self._mutex, self._sidecar.hold(exclusive=write, timeout=self.lock_timeout):
            con = self._attach(read_only=not write, start=start)
            try:
                yield con
            finally:
                self._detach(con)

    def _release(self) -> None:
        if self._host_pid == os.getpid():
            for host in self._hosts.values():
                with contextlib.suppress(Exception):
                    host.close()
        self._hosts = {}
        if self._con is not None:
            with contextlib.suppress(Exception):
                self._con.close()
            self._con = None
        if self._lock_fd is not None:
            SidecarLock.release(self._lock_fd)
            self._lock_fd = None

    def close(self) -> None:
        """Close the connection (exclusive and memory stores) and release the lock."""
        with self._mutex:
            if not self._closed:
                self._closed = True
                self._release()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else ("exclusive" if self.exclusive else "shared")
        return f"<Store {self.path} {mode}>"

    # -- writing -----------------------------------------------------------------

    def write_tables(
        self, tables: Mapping[str, pa.Table], on_commit: Callable[[], None] | None = None
    ) -> None:
        """Insert Arrow tables (by table name, by column name), one bulk insert each,
        all in one DB transaction. Used by the recorder's writer thread. ``on_commit`` runs
        once the transaction is committed (durable in DuckDB's write-ahead log), before
        the file is detached (which checkpoints it)."""
        with self._connection(write=True) as con:
            # One thread, as for shared stores (see _attach); an exclusive store's one
            # connection serves queries too, so it is switched for the write only.
            threads = 1
            if self.exclusive:
                threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
                con.execute("SET threads = 1")
            try:
                con.execute("BEGIN TRANSACTION")
                try:
                    for name, table in tables.items():
                        if name not in WRITE_TABLES:
                            raise StoreError(
                                f"unknown table {name!r}; tables: {', '.join(WRITE_TABLES)}"
                            )
                        if table.num_rows == 0:
                            continue
                        # DuckDB finds the Arrow table by this local variable's name (its
                        # replacement scan): ~0.6 ms less per insert than register().
                        luthien_arrow_piece = table  # noqa: F841
                        con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM luthien_arrow_piece")
                    con.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(Exception):
                        con.execute("ROLLBACK")
                    raise
                if on_commit is not None:
                    on_commit()
            finally:
                if threads != 1:
                    with contextlib.suppress(Exception):
                        con.execute(f"SET threads = {int(threads)}")

    # -- queries -----------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        """The schema version of the database."""
        with self._connection() as con:
            return current_version(con)

    def sql(
        self, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> pd.DataFrame:
        """Any SQL over the tables (``transactions``, ``payloads``, ``chunks``, ``hooks``,
        ``events``, ``metrics``, ``schema_version``), as a DataFrame."""
        with self._connection() as con:
            return con.execute(query, params).df() if params is not None else con.sql(query).df()

    def transactions(
        self,
        *,
        status: str | Sequence[str] | None = None,
        policy: str | None = None,
        model: str | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Recorded transactions, most recent first. ``policy`` matches the policy class
        name, qualified (``pkg.mod.Cls``) or not (``Cls``)."""
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params.extend(statuses)
        if policy is not None:
            where.append("(policy_class = ? OR policy_class LIKE ?)")
            params.extend([policy, f"%.{policy}"])
        if model is not None:
            where.append("model = ?")
            params.append(model)
        query = "SELECT * FROM transactions"
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY started_at DESC, transaction_id"
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        return self.sql(query, params)

    def chunks(self, transaction_id: str, direction: str | None = None) -> pd.DataFrame:
        """One transaction's chunks (``direction``: ``"ingress"``, ``"egress"`` or both),
        ingress first, in order; ``raw`` holds each chunk as JSON."""
        if direction not in (None, "ingress", "egress"):
            raise ValueError(f"direction must be 'ingress', 'egress' or None, not {direction!r}")
        query = (
            "SELECT * EXCLUDE (raw_json), "
            f"CAST({RAW_CHUNK_SQL} AS VARCHAR) AS raw FROM chunks WHERE transaction_id = ?"
        )
        params: list[Any] = [transaction_id]
        if direction is not None:
            query += " AND direction = ?"
            params.append(direction)
        query += " ORDER BY direction = 'egress', chunk_index"
        return self.sql(query, params)

    def hook_trace(self, transaction_id: str) -> pd.DataFrame:
        """Every hook that fired in a transaction, in firing order."""
        return self.sql(
            "SELECT * FROM hooks WHERE transaction_id = ? ORDER BY seq", [transaction_id]
        )

    def events(self, transaction_id: str | None = None, name: str | None = None) -> pd.DataFrame:
        """Events policies emitted (``ctx.observability.emit_event``)."""
        return self._observations("events", transaction_id, name)

    def metrics(self, transaction_id: str | None = None, name: str | None = None) -> pd.DataFrame:
        """Metrics policies recorded (``ctx.observability.record_metric``)."""
        return self._observations("metrics", transaction_id, name)

    def _observations(
        self, table: str, transaction_id: str | None, name: str | None
    ) -> pd.DataFrame:
        where, params = [], []
        if transaction_id is not None:
            where.append("transaction_id = ?")
            params.append(transaction_id)
        if name is not None:
            where.append("name = ?")
            params.append(name)
        query = f"SELECT * FROM {table}"
        if where:
            query += " WHERE " + " AND ".join(where)
        return self.sql(query + " ORDER BY transaction_id, seq", params)

    def response_pair(self, transaction_id: str) -> pd.DataFrame:
        """Raw vs final: rows ``original`` and ``final``, columns ``request``,
        ``response`` (parsed JSON, None when absent) and ``finish_reason``."""
        import pandas as pd

        frame = self.sql(
            "SELECT p.original_request, p.final_request, p.original_response, "
            "p.final_response, t.original_finish_reason, t.final_finish_reason "
            "FROM payloads p LEFT JOIN transactions t USING (transaction_id) "
            "WHERE p.transaction_id = ?",
            [transaction_id],
        )
        if frame.empty:
            raise KeyError(f"no transaction {transaction_id!r} in {self.path}")
        row = frame.iloc[0]

        def load(value: Any) -> Any:
            return json.loads(value) if isinstance(value, str) else None

        return pd.DataFrame(
            {
                "request": [load(row["original_request"]), load(row["final_request"])],
                "response": [load(row["original_response"]), load(row["final_response"])],
                "finish_reason": [row["original_finish_reason"], row["final_finish_reason"]],
            },
            index=pd.Index(["original", "final"], name="side"),
        )

    # -- export ------------------------------------------------------------------

    def export_parquet(self, table_or_query: str, path: str | os.PathLike[str]) -> Path:
        """Write a table (by name) or the result of a SELECT to a Parquet file."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        source = table_or_query.strip()
        query = f"SELECT * FROM {source}" if _IDENT.match(source) else source
        quoted = str(target).replace("'", "''")
        with self._connection() as con:
            con.execute(f"COPY ({query}) TO '{quoted}' (FORMAT parquet)")
        return target

    def export_all(self, folder: str | os.PathLike[str]) -> dict[str, Path]:
        """Every table to ``folder/<table>.parquet``; returns the paths by table."""
        base = Path(folder)
        base.mkdir(parents=True, exist_ok=True)
        return {
            table: self.export_parquet(table, base / f"{table}.parquet")
            for table in (*TABLES, "schema_version")
        }


def open_store(
    path: str | os.PathLike[str] | None = None,
    *,
    read_only: bool = False,
    exclusive: bool = False,
    lock_timeout: float = 30.0,
) -> Store:
    """Open (creating and migrating if needed) the store at ``path``, default
    ``$LUTHIEN_LAB_STORE`` or ``./luthien_lab.duckdb``; ``":memory:"`` for a throwaway."""
    return Store(path, read_only=read_only, exclusive=exclusive, lock_timeout=lock_timeout)
