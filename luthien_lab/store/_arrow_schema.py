"""The Arrow schemas of the store's tables, as the recorder builds them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["arrow_schema"]


def _build() -> dict[str, pa.Schema]:
    import pyarrow as pa

    ts = pa.timestamp("us", tz="UTC")
    tool = pa.struct(
        [
            ("index", pa.int32()),
            ("id", pa.string()),
            ("name", pa.string()),
            ("arguments", pa.string()),
        ]
    )
    s, i32, i64 = pa.string(), pa.int32(), pa.int64()
    return {
        "transactions": pa.schema(
            [
                ("transaction_id", s),
                ("started_at", ts),
                ("ended_at", ts),
                ("duration_ms", pa.float64()),
                ("model", s),
                ("provider", s),
                ("policy_class", s),
                ("policy_config", s),
                ("streaming", pa.bool_()),
                ("status", s),
                ("error", s),
                ("error_type", s),
                ("ingress_chunk_count", i32),
                ("egress_chunk_count", i32),
                ("original_finish_reason", s),
                ("final_finish_reason", s),
                ("response_received_offset_ns", i64),
                ("response_sent_offset_ns", i64),
                ("tags", s),
                ("recorder_pid", i32),
                ("recorder_host", s),
                ("storage_notes", s),
                ("api", s),
                ("shadow_of", s),
                ("shadow_name", s),
                ("shadow_dropped", i32),
            ]
        ),
        "payloads": pa.schema(
            [
                ("transaction_id", s),
                ("original_request", s),
                ("final_request", s),
                ("original_response", s),
                ("final_response", s),
            ]
        ),
        "chunk_rows": pa.schema(
            [
                ("transaction_id", s),
                ("direction", s),
                ("chunk_index", i32),
                ("offset_ns", i64),
                ("response_id", s),
                ("model", s),
                ("created", i64),
                ("system_fingerprint", s),
                ("role", s),
                ("content", s),
                ("reasoning", s),
                ("tool_calls", pa.list_(tool)),
                ("finish_reason", s),
                ("prompt_tokens", i64),
                ("completion_tokens", i64),
                ("total_tokens", i64),
                ("raw_json", s),
                ("egress_index", i32),
                ("egress_offset_ns", i64),
            ]
        ),
        "hooks": pa.schema(
            [
                ("transaction_id", s),
                ("seq", i32),
                ("hook", s),
                ("chunk_index", i32),
                ("block_kind", s),
                ("block_id", s),
                ("tool_index", i32),
                ("start_offset_ns", i64),
                ("duration_ns", i64),
                ("egress_start", i32),
                ("egress_end", i32),
            ]
        ),
        "events": pa.schema(
            [
                ("transaction_id", s),
                ("seq", i32),
                ("offset_ns", i64),
                ("name", s),
                ("data", s),
            ]
        ),
        "metrics": pa.schema(
            [
                ("transaction_id", s),
                ("seq", i32),
                ("offset_ns", i64),
                ("name", s),
                ("value", pa.float64()),
                ("labels", s),
            ]
        ),
    }


_SCHEMAS: dict[str, Any] = {}


def arrow_schema(name: str) -> pa.Schema:
    """The Arrow schema of store table ``name`` (pyarrow imported on first use)."""
    if not _SCHEMAS:
        _SCHEMAS.update(_build())
    return _SCHEMAS[name]
