"""Transactions the store could not take, kept beside it until it can.

``<store>.deadletter.jsonl`` holds one JSON line per parked write: the rows, by
table, exactly as they would have been inserted (already redacted and made safe),
why they were parked and when. A write is parked when the file could not be written
at all: the store was busy (another process held it past ``lock_timeout``, or this
process holds it read-only: ``duckdb.connect(path, read_only=True)`` in a notebook)
or it failed even in the transaction's safe and minimal forms.

Parked rows are re-offered when the store is next opened for writing, and by the
recorder that parked them (after its next write, and every second or so while it
waits); a replay inserts the transactions not already in the store, adds a
``replayed`` note to their ``storage_notes``, and removes them from the file (the
file goes once it is empty). Appends and replays take an ``flock`` on the file, so
processes sharing the store share it too. An in-memory store keeps its dead letters
in memory.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from luthien_lab.store._arrow_schema import arrow_schema

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["SUFFIX", "DeadLetters"]

SUFFIX = ".deadletter.jsonl"

Entry = dict[str, Any]
Writer = Callable[[dict[str, "pa.Table"]], None]


def _jsonable(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} in a dead letter")


def to_entry(tables: Mapping[str, pa.Table], *, error: str, reason: str) -> Entry:
    """A parked write: the rows of ``tables`` by table name."""
    return {
        "parked_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "reason": reason,
        "error": error,
        "tables": {name: table.to_pylist() for name, table in tables.items() if table.num_rows},
    }


def entry_ids(entry: Entry) -> list[str]:
    return [row["transaction_id"] for row in entry["tables"].get("transactions", [])]


def to_tables(entry: Entry) -> dict[str, pa.Table]:
    """The Arrow tables of a parked write, each transaction noted as replayed."""
    import pyarrow as pa

    note = {
        "field": "transaction",
        "action": "replayed",
        "detail": f"parked {entry['parked_at']} ({entry['reason']}: {entry['error']})",
        "count": 1,
    }
    tables = {}
    for name, rows in entry["tables"].items():
        schema = arrow_schema(name)
        stamps = [f.name for f in schema if pa.types.is_timestamp(f.type)]
        rows = [dict(row) for row in rows]  # the entry stays as parked, if kept
        for row in rows:
            for field in stamps:
                if isinstance(row.get(field), str):
                    row[field] = _dt.datetime.fromisoformat(row[field])
            if name == "transactions":
                earlier = json.loads(row["storage_notes"]) if row.get("storage_notes") else []
                row["storage_notes"] = json.dumps([*earlier, note], ensure_ascii=False)
        tables[name] = pa.Table.from_pylist(rows, schema=schema)
    return tables


class DeadLetters:
    """The dead letters of one store: a file beside it, or a list for a memory store."""

    def __init__(self, db_path: str | None) -> None:
        self.path = None if db_path is None else db_path + SUFFIX
        self._memory: list[Entry] = []

    def __len__(self) -> int:
        """Parked writes (lines; a line may hold several transactions)."""
        if self.path is None:
            return len(self._memory)
        with contextlib.suppress(OSError), open(self.path, "rb") as handle:
            return sum(1 for line in handle if line.strip())
        return 0

    def pending(self) -> bool:
        """Anything parked (cheap: one stat)."""
        if self.path is None:
            return bool(self._memory)
        try:
            return os.path.getsize(self.path) > 0
        except OSError:
            return False

    def park(self, tables: Mapping[str, pa.Table], *, error: str, reason: str) -> None:
        entry = to_entry(tables, error=error, reason=reason)
        if self.path is None:
            self._memory.append(entry)
            return
        line = json.dumps(entry, default=_jsonable, ensure_ascii=False) + "\n"
        with self._locked(create=True, blocking=True) as fd:
            assert fd is not None
            os.write(fd, line.encode())
            os.fsync(fd)

    @contextlib.contextmanager
    def _locked(self, *, create: bool, blocking: bool) -> Iterator[int | None]:
        """The file, locked; None when it does not exist (or, not ``blocking``, when
        another process is replaying it). A replay removes the file once empty, so
        the lock is taken again if the path names another file by then."""
        assert self.path is not None
        flags = os.O_RDWR | os.O_APPEND | (os.O_CREAT if create else 0)
        while True:
            try:
                fd = os.open(self.path, flags, 0o644)
            except FileNotFoundError:
                yield None
                return
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
                except BlockingIOError:
                    yield None
                    return
                try:
                    same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    same = False
                if same:
                    yield fd
                    return
            finally:
                os.close(fd)  # closing releases the flock

    def replay(self, write: Writer) -> set[str]:
        """Write every parked transaction with ``write`` (which skips those already
        in the store) and drop it; returns the ids dropped. What fails stays."""
        if self.path is None:
            entries, self._memory = self._memory, []
            kept, settled = _replay(entries, write)
            self._memory[:0] = kept
            return settled
        with self._locked(create=False, blocking=False) as fd:
            if fd is None:
                return set()
            with open(fd, "rb", closefd=False) as handle:
                lines = [line for line in handle.read().splitlines() if line.strip()]
            entries, broken = [], []
            for line in lines:
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    broken.append(line)  # cut short by a crash: kept, never replayed
            kept, settled = _replay(entries, write)
            rest = broken + [
                json.dumps(e, default=_jsonable, ensure_ascii=False).encode() for e in kept
            ]
            os.ftruncate(fd, 0)
            if rest:
                os.write(fd, b"\n".join(rest) + b"\n")
                os.fsync(fd)
            else:
                os.unlink(self.path)
            return settled


def _replay(entries: list[Entry], write: Writer) -> tuple[list[Entry], set[str]]:
    """All entries in one write, else one by one; returns (entries kept, ids settled)."""
    if not entries:
        return [], set()
    try:
        write(_merged(entries))
        return [], {tid for entry in entries for tid in entry_ids(entry)}
    except Exception:
        if len(entries) == 1:
            return entries, set()
    kept, settled = [], set()
    for entry in entries:
        try:
            write(to_tables(entry))
            settled.update(entry_ids(entry))
        except Exception:
            kept.append(entry)
    return kept, settled


def _merged(entries: list[Entry]) -> dict[str, pa.Table]:
    import pyarrow as pa

    parts: dict[str, list[pa.Table]] = {}
    for entry in entries:
        for name, table in to_tables(entry).items():
            parts.setdefault(name, []).append(table)
    return {name: pa.concat_tables(tables) for name, tables in parts.items()}
