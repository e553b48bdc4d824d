from __future__ import annotations

import contextlib
import sys

import pyarrow.parquet as pq
import pytest
from store_testkit import drive_stream, info, make_chunk

from luthien_lab.errors import StoreError
from luthien_lab.events import (
    ChunkEvent,
    EventEmitted,
    RequestProcessed,
    TransactionFinished,
    TransactionResult,
)
from luthien_lab.request import Request
from luthien_lab.store import (
    SCHEMA_VERSION,
    DuckDBRecorder,
    Store,
    default_store_path,
    open_store,
)

SECRET = "sk-plantedSECRET0123456789abcdef"
HEADER_SECRET = "hdr-planted-credential-98765"


def test_secrets_never_reach_the_file(tmp_path):
    path = tmp_path / "s.duckdb"
    request = Request(
        model="m",
        messages=[{"role": "user", "content": "max_tokens stays; say hi"}],
        api_key=SECRET,
        max_tokens=5,
        extra_headers={"Authorization": f"Bearer {HEADER_SECRET}", "X-Trace": "keep-me"},
        metadata={"nested": {"client_secret": "nested-secret-value", "password": "pw-123456"}},
    )
    with DuckDBRecorder(path) as recorder:
        recorder.transaction_started(
            info("tx-s", start_ns=0, policy_config={"judge_api_key": SECRET, "token": "tok-abcdef"})
        )
        recorder.request_processed(RequestProcessed("tx-s", request, request))
        recorder.chunk_received(ChunkEvent("tx-s", 0, make_chunk("hi", role="assistant"), 10))
        recorder.event_emitted(EventEmitted("tx-s", "auth", {"x-api-key": HEADER_SECRET}, 20))
        recorder.transaction_finished(
            TransactionFinished(
                "tx-s",
                TransactionResult(
                    "error", 30, error=f"AuthenticationError: Incorrect API key provided: {SECRET}"
                ),
            )
        )
        recorder.flush()
        with Store(path, read_only=True) as reader:
            pair = reader.response_pair("tx-s")
            req = pair.loc["original", "request"]
            assert req["api_key"] == "[REDACTED]"
            assert req["max_tokens"] == 5
            assert req["extra_headers"] == {"Authorization": "[REDACTED]", "X-Trace": "keep-me"}
            assert req["metadata"]["nested"]["client_secret"] == "[REDACTED]"
            assert "[REDACTED]" in reader.transactions()["error"].iloc[0]
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    for secret in (SECRET, HEADER_SECRET, "nested-secret-value", "pw-123456", "tok-abcdef"):
        assert secret.encode() not in data, secret
        assert secret[3:15].encode() not in data, secret


def test_secret_detection_is_not_fooled_by_compression(tmp_path):
    """The grep test above only means something if plain strings are visible in the file."""
    path = tmp_path / "v.duckdb"
    with DuckDBRecorder(path) as recorder:
        marker = "visible-marker-7f3a9c"
        drive_stream(
            recorder,
            "tx-v",
            [make_chunk("x")],
            request=Request(model="m", messages=[{"role": "user", "content": marker}]),
        )
    assert marker.encode() in path.read_bytes()


def test_queries_and_exports(tmp_path, recorder, store):
    drive_stream(recorder, "a", [make_chunk("1", role="assistant")], start_ns=0)
    drive_stream(recorder, "b", [make_chunk("2", role="assistant")], status="error", error="x")
    recorder.transaction_started(info("c", policy_class="other.mod.Judge"))
    recorder.transaction_finished(TransactionFinished("c", TransactionResult("ok", 10**12)))
    recorder.flush()
    assert set(store.transactions(status=["ok", "error"])["transaction_id"]) == {"a", "b", "c"}
    assert store.transactions(policy="Judge")["transaction_id"].tolist() == ["c"]
    assert store.transactions(policy="other.mod.Judge")["transaction_id"].tolist() == ["c"]
    assert store.transactions(model="nope").empty
    assert (
        store.sql("SELECT count(*) AS n FROM chunks WHERE transaction_id = ?", ["a"])["n"].iloc[0]
        == 2
    )
    out = store.export_parquet("chunks", tmp_path / "chunks.parquet")
    assert pq.read_table(out).num_rows == 4
    q = store.export_parquet(
        "SELECT transaction_id FROM transactions WHERE status = 'error'", tmp_path / "q.parquet"
    )
    assert pq.read_table(q).column("transaction_id").to_pylist() == ["b"]
    paths = store.export_all(tmp_path / "all")
    assert set(paths) == {
        "transactions",
        "payloads",
        "chunks",
        "hooks",
        "events",
        "metrics",
        "schema_version",
    }
    assert pq.read_table(paths["transactions"]).num_rows == 3
    with pytest.raises(KeyError):
        store.response_pair("missing")
    with pytest.raises(ValueError):
        store.chunks("a", direction="sideways")


def test_default_location(monkeypatch, tmp_path):
    monkeypatch.delenv("LUTHIEN_LAB_STORE", raising=False)
    assert default_store_path() == "luthien_lab.duckdb"
    monkeypatch.setenv("LUTHIEN_LAB_STORE", str(tmp_path / "dir") + "/")
    with open_store() as store:
        assert store.path == str((tmp_path / "dir" / "luthien_lab.duckdb").resolve())
        assert store.schema_version == SCHEMA_VERSION
    with pytest.raises(StoreError, match="read-only"), open_store(read_only=True) as ro:
        DuckDBRecorder(ro)
    with pytest.raises(StoreError, match="no store"):
        open_store(tmp_path / "absent.duckdb", read_only=True)
    store = Store.memory()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.transactions()


def _threads(store: Store) -> int:
    return int(store.sql("SELECT current_setting('threads') AS n")["n"].iloc[0])


@pytest.mark.parametrize("kind", ["shared file", "memory"])
def test_writes_run_on_one_thread_and_queries_keep_theirs(tmp_path, kind):
    store = Store(tmp_path / "threads.duckdb") if kind == "shared file" else Store.memory()
    seen: list[int] = []
    original = store._connection

    @contextlib.contextmanager
    def watching(*, write: bool = False, timeout: float | None = None):
        with original(write=write, timeout=timeout) as con:
            yield _InsertWatch(con, seen)

    try:
        before = _threads(store)
        store._connection = watching  # type: ignore[method-assign]
        with DuckDBRecorder(store) as recorder:
            drive_stream(recorder, "tx", [make_chunk("a", role="assistant")])
            recorder.flush()
        store._connection = original  # type: ignore[method-assign]
        assert seen and set(seen) == {1}  # every insert ran on one thread
        assert _threads(store) == before  # queries still get every thread
        assert len(store.chunks("tx")) == 2
    finally:
        store.close()


class _InsertWatch:
    """A DuckDB connection that notes the thread count each INSERT runs with."""

    def __init__(self, con, seen: list[int]) -> None:
        self._con, self._seen = con, seen

    def execute(self, query, *args):
        if query.startswith("INSERT"):
            self._seen.append(self._con.execute("SELECT current_setting('threads')").fetchone()[0])
            # DuckDB finds the Arrow table by its variable's name in the calling frame.
            luthien_arrow_piece = sys._getframe(1).f_locals["luthien_arrow_piece"]  # noqa: F841
        return self._con.execute(query, *args)

    def __getattr__(self, name):
        return getattr(self._con, name)


def test_schema_version_leaves_the_connection_usable():
    """Reading the version must finish its results: an in-memory store keeps one
    connection, whose next query failed with "unfinished result"."""
    store = Store.memory()
    try:
        assert store.schema_version == SCHEMA_VERSION
        assert len(store.transactions()) == 0
        assert store.schema_version == SCHEMA_VERSION
        assert store.sql("SELECT count(*) AS n FROM chunks")["n"].tolist() == [0]
    finally:
        store.close()
