"""How a shared-mode Store reaches its file for one unit of work (a query, a write).

The file is attached to one of the Store's private in-memory DuckDB instances (one
for reading, one for writing), worked on and detached, which releases it for other
processes (and, after a write, checkpoints it). Attaching costs about 1 ms where
opening a new DuckDB instance on the file costs about 14 ms.

DuckDB attaches a file once per process for writing: while this process holds the
file in a DuckDB instance of its own (a notebook's ``duckdb.connect(path)``), any other
attach fails with "Unique file handle conflict". Then the unit of work goes through
that instance instead: ``duckdb.connect(path)`` returns a new connection to it from
DuckDB's instance cache, so the Store reads and writes beside the user's connection.
When the user's instance is read-only, reading still attaches (read-only attaches may
share a file), but nothing can write the file: :class:`StoreHeldHereError`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from luthien_lab.errors import StoreError
from luthien_lab.store._locking import held_here_error, holder_from_duckdb_error, locked_error

__all__ = ["ALIAS", "Attacher", "is_lock_error"]

MEMORY = ":memory:"
ALIAS = "luthien_store"


def is_lock_error(exc: BaseException) -> bool:
    """DuckDB says another process holds the file."""
    text = str(exc)
    return "lock" in text.lower() and ("Conflicting" in text or "Could not set lock" in text)


def _held_here(exc: BaseException) -> bool:
    """DuckDB says an instance of this process already has the file."""
    text = str(exc)
    return "Unique file handle conflict" in text or "already attached" in text


class _HeldHere(StoreError):
    """A DuckDB instance of this process has the file (what ``unit`` works around; an
    exclusive Store, which opens the file itself, reports it)."""


class Attacher:
    """Attaches ``path`` for one unit of work at a time (the caller serialises them)."""

    def __init__(self, duckdb: Any, path: str, lock_timeout: float) -> None:
        self._duckdb = duckdb
        self.path = path
        self.lock_timeout = lock_timeout
        self._hosts: dict[str, Any] = {}
        self._host_pid = 0

    def retry_locked(
        self, open_it: Callable[[], Any], *, start: float, timeout: float | None = None
    ) -> Any:
        """``open_it()``, retried while DuckDB says another process holds the file, up
        to ``timeout`` seconds (default: ``lock_timeout``)."""
        limit = self.lock_timeout if timeout is None else timeout
        delay = 0.002
        while True:
            try:
                return open_it()
            except self._duckdb.Error as exc:
                if _held_here(exc):
                    raise _HeldHere(
                        f"the store {self.path} is already open in this process, in "
                        f"another DuckDB instance: {exc}"
                    ) from exc
                if not is_lock_error(exc):
                    raise StoreError(f"could not open the store {self.path}: {exc}") from exc
                waited = time.monotonic() - start
                if waited >= limit:
                    pid = holder_from_duckdb_error(str(exc))
                    holder = f"PID {pid}" if pid else str(exc)
                    raise locked_error(self.path, holder, waited=waited) from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.05)

    def _host(self, role: str) -> Any:
        if self._host_pid != os.getpid():
            # A forked child must not touch its parent's instances: make its own.
            self._hosts, self._host_pid = {}, os.getpid()
        host = self._hosts.get(role)
        if host is None:
            # Writes run on one thread: one thread inserts a bulk of rows faster than
            # two (measured: ~30%) and leaves the other core to the event loop. An
            # instance of their own keeps it so without resizing a thread pool per
            # write (1-2 ms), and leaves queries all the threads.
            config: dict[str, str | bool | int | float | list[str]] = (
                {"threads": 1} if role == "write" else {}
            )
            host = self._hosts[role] = self._duckdb.connect(MEMORY, config=config)
        return host

    @contextlib.contextmanager
    def unit(self, *, write: bool, start: float, timeout: float | None = None) -> Iterator[Any]:
        """A connection with the file selected, for one unit of work."""
        cursor = self._host("write" if write else "read").cursor()
        held_here = False
        try:
            cursor.execute(f"DETACH DATABASE IF EXISTS {ALIAS}")
            quoted = self.path.replace("'", "''")
            mode = "" if write else " (READ_ONLY)"
            self.retry_locked(
                lambda: cursor.execute(f"ATTACH '{quoted}' AS {ALIAS}{mode}"),
                start=start,
                timeout=timeout,
            )
            cursor.execute(f"USE {ALIAS}")
        except _HeldHere:
            held_here = True
            cursor.close()
        except BaseException:
            cursor.close()
            raise
        if held_here:
            with self._borrowed(write=write) as con:
                yield con
            return
        try:
            yield cursor
        finally:
            try:
                cursor.execute("USE memory")
                cursor.execute(f"DETACH DATABASE {ALIAS}")  # checkpoints, releases the file
            finally:
                cursor.close()

    @contextlib.contextmanager
    def _borrowed(self, *, write: bool) -> Iterator[Any]:
        """A connection to this process's own DuckDB instance on the file."""
        try:
            con = self._duckdb.connect(self.path)  # the holder reads and writes
        except self._duckdb.Error as exc:
            if write:
                raise held_here_error(self.path) from exc
            try:
                con = self._duckdb.connect(self.path, read_only=True)
            except self._duckdb.Error as again:
                raise StoreError(f"could not open the store {self.path}: {again}") from again
        try:
            yield con
        finally:
            # Only this connection: the instance lives on while its owner's does.
            con.close()

    def close(self) -> None:
        if self._host_pid == os.getpid():
            for host in self._hosts.values():
                with contextlib.suppress(Exception):
                    host.close()
        self._hosts = {}
