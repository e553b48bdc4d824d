"""``Store``: where recordings live, and the queries over them."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from luthien_lab.errors import StoreError
from luthien_lab.store._attach import Attacher
from luthien_lab.store._deadletter import DeadLetters
from luthien_lab.store._location import (
    DEFAULT_FILENAME,
    ENV_VAR,
    MEMORY,
    default_store_path,
    resolve,
)
from luthien_lab.store._locking import SidecarLock, StoreHeldHereError
from luthien_lab.store._schema import (
    RAW_CHUNK_SQL,
    SCHEMA_VERSION,
    TABLES,
    current_version,
    migrate,
)
from luthien_lab.store._tables import insert_tables

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from luthien_lab.store._cases import StoreCases

__all__ = ["DEFAULT_FILENAME", "ENV_VAR", "Store", "default_store_path", "open_store"]

log = logging.getLogger("luthien_lab.store")

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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
        self.path = resolve(path)
        self.read_only = read_only
        self.lock_timeout = lock_timeout
        self.is_memory = self.path == MEMORY
        self.exclusive = exclusive or self.is_memory
        self._mutex = threading.RLock()
        self._con: Any = None
        self._lock_fd: int | None = None
        self._closed = False
        self._sidecar = None if self.is_memory else SidecarLock(self.path)
        self._attacher = None if self.is_memory else Attacher(duckdb, self.path, lock_timeout)
        self.dead_letters = DeadLetters(None if self.is_memory else self.path)
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
            self._migrate_shared()
        if not read_only and self.dead_letters.pending():
            self.replay_dead_letters()
            if self.dead_letters.pending():
                log.warning(
                    "%d parked write(s) in %s could not be written to %s yet; they are "
                    "offered again when the store is next opened",
                    len(self.dead_letters),
                    self.dead_letters.path,
                    self.path,
                )

    def _migrate_shared(self) -> None:
        try:
            with self._connection(write=True) as con:
                migrate(con)
        except StoreHeldHereError:
            # This process has the file open read-only elsewhere (a notebook's own
            # duckdb connection): it cannot be migrated now, but a current one can
            # still be read, and recorded to once that connection closes.
            with self._connection() as con:
                if current_version(con) != SCHEMA_VERSION:
                    raise
            log.info("%s is open read-only in this process: writes wait", self.path)

    @classmethod
    def memory(cls) -> Store:
        """A fresh in-memory store (tests, throwaway experiments)."""
        return cls(MEMORY)

    # -- connections -------------------------------------------------------------

    def _connect(self, *, read_only: bool, start: float) -> Any:
        assert self._attacher is not None
        return self._attacher.retry_locked(
            lambda: self._duckdb.connect(self.path, read_only=read_only), start=start
        )

    @contextlib.contextmanager
    def _connection(self, *, write: bool = False, timeout: float | None = None) -> Iterator[Any]:
        """A connection for one unit of work (a query or a batch write); ``timeout``:
        how long to wait for another process's hold (default ``lock_timeout``)."""
        if self._closed:
            raise StoreError(f"the store {self.path} is closed.")
        if write and self.read_only:
            raise StoreError(f"the store {self.path} was opened read-only: it cannot record.")
        if self.exclusive:
            with self._mutex:
                yield self._con
            return
        assert self._sidecar is not None and self._attacher is not None
        start = time.monotonic()
        wait = self.lock_timeout if timeout is None else timeout
        # One attachment at a time per Store: DuckDB attaches a file once per instance.
        with (
            self._mutex,
            self._sidecar.hold(exclusive=write, timeout=wait),
            self._attacher.unit(write=write, start=start, timeout=wait) as con,
        ):
            yield con

    def _release(self) -> None:
        if self._attacher is not None:
            self._attacher.close()
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
        self,
        tables: Mapping[str, pa.Table],
        on_commit: Callable[[], None] | None = None,
        *,
        skip_existing: bool = False,
        lock_timeout: float | None = None,
    ) -> None:
        """Insert Arrow tables (by table name, by column name), one bulk insert each,
        all in one DB transaction. Used by the recorder's writer thread. ``on_commit`` runs
        once the transaction is committed (durable in DuckDB's write-ahead log), before
        the file is detached (which checkpoints it). ``skip_existing``: leave out the
        rows of transactions already in the store (a replay of parked rows);
        ``lock_timeout``: this write's wait for another process (default: the Store's)."""
        with self._connection(write=True, timeout=lock_timeout) as con:
            # One thread, as for shared stores (see _attach); an exclusive store's one
            # connection serves queries too, so it is switched for the write only.
            threads = 1
            if self.exclusive:
                threads = con.execute("SELECT current_setting('threads')").fetchall()[0][0]
                con.execute("SET threads = 1")
            try:
                con.execute("BEGIN TRANSACTION")
                try:
                    insert_tables(con, tables, skip_existing)
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

    def replay_dead_letters(self, lock_timeout: float | None = None) -> set[str]:
        """Write the transactions parked beside the store (``<file>.deadletter.jsonl``,
        see ``_deadletter``) that are not in it yet, and drop them from the file;
        returns their ids. What cannot be written yet stays parked."""
        return self.dead_letters.replay(
            lambda tables: self.write_tables(tables, skip_existing=True, lock_timeout=lock_timeout)
        )

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

    # -- cases -------------------------------------------------------------------

    def cases(self, **filters: Any) -> StoreCases:
        """Recorded transactions as evaluation cases, oldest first, read lazily in
        batches; ``len()`` counts them. Filters (``since="7d"``, ``status``, ``model``,
        ``policy``, ``tag``, ``api``, ``where``, ``limit``, ``shadows``...): see
        :class:`~luthien_lab.store._cases.StoreCases`. ``evaluate({"candidate": p},
        store.cases(since="7d"))`` compares each candidate with what production sent."""
        from luthien_lab.store._cases import StoreCases

        return StoreCases(self, **filters)

    def export_cases(self, path: str | os.PathLike[str], **filters: Any) -> Path:
        """:meth:`cases` (same filters) as Parquet, a batch at a time, for
        ``luthien_lab.evaluate.evaluate_on_ray``; returns the path."""
        from luthien_lab.evaluate._cases import cases_to_parquet

        return cases_to_parquet(self.cases(**filters), path)

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
