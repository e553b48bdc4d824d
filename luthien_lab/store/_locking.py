"""Cross-process coordination of a store file.

A sidecar ``<file>.lock`` is locked with ``flock``: exclusively while a process
writes (or migrates), shared while it reads. The kernel drops the lock when the
process dies, even on SIGKILL, so a crash never leaves a stale lock. The exclusive
holder writes its PID, host and command line into the sidecar so that a process
that waits too long can say who holds the store.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import socket
import sys
import time
from collections.abc import Iterator

from luthien_lab.errors import StoreLockedError

__all__ = [
    "SidecarLock",
    "StoreHeldHereError",
    "held_here_error",
    "holder_from_duckdb_error",
    "locked_error",
]

_PID_RE = re.compile(r"PID (\d+)")


def holder_from_duckdb_error(message: str) -> str | None:
    """The PID DuckDB names in its 'Conflicting lock is held in ... (PID n)' error."""
    match = _PID_RE.search(message)
    return match.group(1) if match else None


def locked_error(path: str, holder: str, *, waited: float) -> StoreLockedError:
    return StoreLockedError(
        f"the store {path} is held for writing by another process ({holder}); waited "
        f"{waited:.1f}s. luthien-lab processes share a store by opening it only while "
        "they write, so a long hold means an exclusive Store (exclusive=True) or a "
        "plain duckdb.connect() in that process. Close it there (store.close(), "
        "con.close()) or stop that process; then read it with "
        f"open_store({path!r}, read_only=True). To keep recording meanwhile, point "
        "this process at another file (LUTHIEN_LAB_STORE=... or open_store(path))."
    )


class StoreHeldHereError(StoreLockedError):
    """This very process holds the file read-only in a DuckDB instance of its own (a
    ``duckdb.connect(path, read_only=True)`` in a notebook): nothing in the process can
    write it until that connection is closed. The recorder keeps what it could not
    write in the dead-letter file and writes it once the file is free."""


def held_here_error(path: str) -> StoreHeldHereError:
    return StoreHeldHereError(
        f"the store {path} is open read-only in this process (a duckdb.connect(..., "
        "read_only=True) connection, say), so it cannot be written until that "
        "connection is closed (con.close()). Recordings wait in the dead-letter file "
        "meanwhile; to read beside a writer, use open_store(path, read_only=True), "
        "which holds the file only while it reads."
    )


class SidecarLock:
    """``flock`` on ``<db path>.lock``. Not reentrant; one instance per use."""

    def __init__(self, db_path: str) -> None:
        self.db_path = db_path
        self.path = db_path + ".lock"

    def _holder(self) -> str:
        try:
            with open(self.path) as handle:
                text = handle.read().strip()
        except OSError:
            text = ""
        return text or "unknown process"

    @contextlib.contextmanager
    def hold(self, *, exclusive: bool, timeout: float) -> Iterator[int]:
        """Hold the lock (exclusive or shared) for the ``with`` block; raise
        :class:`StoreLockedError` naming the holder after ``timeout`` seconds."""
        fd = self.acquire(exclusive=exclusive, timeout=timeout)
        try:
            yield fd
        finally:
            self.release(fd)

    def acquire(self, *, exclusive: bool, timeout: float) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        start = time.monotonic()
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, mode)
                break
            except BlockingIOError:
                waited = time.monotonic() - start
                if waited >= timeout:
                    os.close(fd)
                    raise locked_error(self.db_path, self._holder(), waited=waited) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        if exclusive:
            info = (
                f"PID {os.getpid()} on {socket.gethostname()}, "
                f"command {' '.join(sys.argv)[:200]!r}, since {time.strftime('%H:%M:%S')}"
            )
            os.ftruncate(fd, 0)
            os.pwrite(fd, info.encode(), 0)
        return fd

    @staticmethod
    def release(fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
