from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from luthien_lab.errors import StoreError
from luthien_lab.store import SCHEMA_VERSION, Store
from luthien_lab.store._schema import current_version, migrate

EXPECTED = {
    "schema_version": [("version", "INTEGER"), ("applied_at", "TIMESTAMP WITH TIME ZONE")],
    "transactions": [
        ("transaction_id", "VARCHAR"),
        ("started_at", "TIMESTAMP WITH TIME ZONE"),
        ("ended_at", "TIMESTAMP WITH TIME ZONE"),
        ("duration_ms", "DOUBLE"),
        ("model", "VARCHAR"),
        ("provider", "VARCHAR"),
        ("policy_class", "VARCHAR"),
        ("policy_config", "JSON"),
        ("streaming", "BOOLEAN"),
        ("status", "VARCHAR"),
        ("error", "VARCHAR"),
        ("error_type", "VARCHAR"),
        ("ingress_chunk_count", "INTEGER"),
        ("egress_chunk_count", "INTEGER"),
        ("original_finish_reason", "VARCHAR"),
        ("final_finish_reason", "VARCHAR"),
        ("response_received_offset_ns", "BIGINT"),
        ("response_sent_offset_ns", "BIGINT"),
        ("tags", "JSON"),
        ("recorder_pid", "INTEGER"),
        ("recorder_host", "VARCHAR"),
        ("storage_notes", "JSON"),
        ("api", "VARCHAR"),
        ("shadow_of", "VARCHAR"),
        ("shadow_name", "VARCHAR"),
        ("shadow_dropped", "INTEGER"),
    ],
    "payloads": [
        ("transaction_id", "VARCHAR"),
        ("original_request", "JSON"),
        ("final_request", "JSON"),
        ("original_response", "JSON"),
        ("final_response", "JSON"),
    ],
    "chunks": [
        ("transaction_id", "VARCHAR"),
        ("direction", "VARCHAR"),
        ("chunk_index", "INTEGER"),
        ("offset_ns", "BIGINT"),
        ("response_id", "VARCHAR"),
        ("model", "VARCHAR"),
        ("created", "BIGINT"),
        ("system_fingerprint", "VARCHAR"),
        ("role", "VARCHAR"),
        ("content", "VARCHAR"),
        ("reasoning", "VARCHAR"),
        (
            "tool_calls",
            'STRUCT("index" INTEGER, id VARCHAR, "name" VARCHAR, arguments VARCHAR)[]',
        ),
        ("finish_reason", "VARCHAR"),
        ("prompt_tokens", "BIGINT"),
        ("completion_tokens", "BIGINT"),
        ("total_tokens", "BIGINT"),
        ("raw_json", "JSON"),
    ],
    "chunk_rows": [],  # filled below: the chunks columns and the egress ones
    "hooks": [
        ("transaction_id", "VARCHAR"),
        ("seq", "INTEGER"),
        ("hook", "VARCHAR"),
        ("chunk_index", "INTEGER"),
        ("block_kind", "VARCHAR"),
        ("block_id", "VARCHAR"),
        ("tool_index", "INTEGER"),
        ("start_offset_ns", "BIGINT"),
        ("duration_ns", "BIGINT"),
        ("egress_start", "INTEGER"),
        ("egress_end", "INTEGER"),
    ],
    "events": [
        ("transaction_id", "VARCHAR"),
        ("seq", "INTEGER"),
        ("offset_ns", "BIGINT"),
        ("name", "VARCHAR"),
        ("data", "JSON"),
    ],
    "metrics": [
        ("transaction_id", "VARCHAR"),
        ("seq", "INTEGER"),
        ("offset_ns", "BIGINT"),
        ("name", "VARCHAR"),
        ("value", "DOUBLE"),
        ("labels", "JSON"),
    ],
}


EXPECTED["chunk_rows"] = [
    *EXPECTED["chunks"],
    ("egress_index", "INTEGER"),
    ("egress_offset_ns", "BIGINT"),
]


def schema_of(con) -> dict[str, list[tuple[str, str]]]:
    rows = con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
    ).fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for table, column, dtype in rows:
        out.setdefault(table, []).append((column, dtype))
    return out


def test_blank_database_migrates_to_exact_schema():
    con = duckdb.connect()
    try:
        assert current_version(con) == 0
        assert migrate(con) == SCHEMA_VERSION == 5
        assert schema_of(con) == EXPECTED
        assert con.execute("SELECT version FROM schema_version ORDER BY 1").fetchall() == [
            (1,),
            (2,),
            (3,),
            (4,),
            (5,),
        ]
        assert migrate(con) == 5  # idempotent
        assert con.execute("SELECT count(*) FROM schema_version").fetchone() == (5,)
        kinds = dict(
            con.execute(
                "SELECT table_name, table_type FROM information_schema.tables "
                "WHERE table_name IN ('chunks', 'chunk_rows')"
            ).fetchall()
        )
        assert kinds == {"chunks": "VIEW", "chunk_rows": "BASE TABLE"}
    finally:
        con.close()


def test_version_1_file_is_migrated_on_open(tmp_path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    migrate(con, upto=1)
    con.execute(
        "INSERT INTO transactions (transaction_id, status, model) VALUES ('old-tx', 'ok', 'm')"
    )
    assert "events" not in schema_of(con)
    con.close()

    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        frame = store.transactions()
        assert list(frame["transaction_id"]) == ["old-tx"]
        assert frame["tags"].isna().all()
        assert store.events().empty
        cols = store.sql(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'transactions'"
        )
        assert {"tags", "recorder_pid", "recorder_host", "storage_notes"} <= set(
            cols["column_name"]
        )


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "new.duckdb"
    con = duckdb.connect(str(path))
    migrate(con)
    con.execute("INSERT INTO schema_version (version) VALUES (99)")
    con.close()
    with pytest.raises(StoreError, match="schema version 99"):
        Store(path)


def test_version_2_chunks_survive_the_view(tmp_path):
    """Chunk rows written before version 3 read back unchanged through the view."""
    path = tmp_path / "v2.duckdb"
    con = duckdb.connect(str(path))
    migrate(con, upto=2)
    con.execute(
        "INSERT INTO chunks (transaction_id, direction, chunk_index, offset_ns, content) "
        "VALUES ('t', 'ingress', 0, 10, 'Hi'), ('t', 'egress', 0, 20, 'HI')"
    )
    con.close()
    with Store(path) as store:
        frame = store.chunks("t")
        assert list(zip(frame["direction"], frame["offset_ns"], frame["content"], strict=True)) == [
            ("ingress", 10, "Hi"),
            ("egress", 20, "HI"),
        ]


def test_a_passed_through_chunk_is_one_row_listed_twice(store):
    store.write_tables(
        {
            "chunk_rows": pa.table(
                {
                    "transaction_id": ["t", "t"],
                    "direction": ["ingress", "ingress"],
                    "chunk_index": pa.array([0, 1], pa.int32()),
                    "offset_ns": [10, 30],
                    "content": ["a", "b"],
                    "egress_index": pa.array([0, None], pa.int32()),
                    "egress_offset_ns": [15, None],
                }
            )
        }
    )
    assert store.sql("SELECT count(*) AS n FROM chunk_rows")["n"][0] == 2
    frame = store.chunks("t")
    assert list(zip(frame["direction"], frame["chunk_index"], frame["offset_ns"], strict=True)) == [
        ("ingress", 0, 10),
        ("ingress", 1, 30),
        ("egress", 0, 15),
    ]
    assert list(frame["content"]) == ["a", "b", "a"]
