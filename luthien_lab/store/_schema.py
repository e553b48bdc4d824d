"""The store's schema, as numbered migrations.

Each migration is a list of SQL statements; :func:`migrate` applies those above the
version recorded in ``schema_version``, one DB transaction per migration. Never edit
a released migration: append a new one.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "TABLES",
    "WRITE_TABLES",
    "current_version",
    "migrate",
]

_CHUNK_DATA = (
    "response_id, model, created, system_fingerprint, role, content, reasoning, "
    "tool_calls, finish_reason, prompt_tokens, completion_tokens, total_tokens, raw_json"
)

MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE transactions (
            transaction_id VARCHAR NOT NULL,
            started_at TIMESTAMPTZ,
            ended_at TIMESTAMPTZ,
            duration_ms DOUBLE,
            model VARCHAR,
            provider VARCHAR,
            policy_class VARCHAR,
            policy_config JSON,
            streaming BOOLEAN,
            status VARCHAR,
            error VARCHAR,
            error_type VARCHAR,
            ingress_chunk_count INTEGER,
            egress_chunk_count INTEGER,
            original_finish_reason VARCHAR,
            final_finish_reason VARCHAR,
            response_received_offset_ns BIGINT,
            response_sent_offset_ns BIGINT
        )""",
        """CREATE TABLE payloads (
            transaction_id VARCHAR NOT NULL,
            original_request JSON,
            final_request JSON,
            original_response JSON,
            final_response JSON
        )""",
        """CREATE TABLE chunks (
            transaction_id VARCHAR NOT NULL,
            direction VARCHAR NOT NULL,
            chunk_index INTEGER NOT NULL,
            offset_ns BIGINT,
            response_id VARCHAR,
            model VARCHAR,
            created BIGINT,
            system_fingerprint VARCHAR,
            role VARCHAR,
            content VARCHAR,
            reasoning VARCHAR,
            tool_calls STRUCT("index" INTEGER, id VARCHAR, "name" VARCHAR, arguments VARCHAR)[],
            finish_reason VARCHAR,
            prompt_tokens BIGINT,
            completion_tokens BIGINT,
            total_tokens BIGINT,
            raw_json JSON
        )""",
        """CREATE TABLE hooks (
            transaction_id VARCHAR NOT NULL,
            seq INTEGER NOT NULL,
            hook VARCHAR NOT NULL,
            chunk_index INTEGER,
            block_kind VARCHAR,
            block_id VARCHAR,
            tool_index INTEGER,
            start_offset_ns BIGINT,
            duration_ns BIGINT,
            egress_start INTEGER,
            egress_end INTEGER
        )""",
    ],
    2: [
        "ALTER TABLE transactions ADD COLUMN tags JSON",
        "ALTER TABLE transactions ADD COLUMN recorder_pid INTEGER",
        "ALTER TABLE transactions ADD COLUMN recorder_host VARCHAR",
        """CREATE TABLE events (
            transaction_id VARCHAR NOT NULL,
            seq INTEGER NOT NULL,
            offset_ns BIGINT,
            name VARCHAR NOT NULL,
            data JSON
        )""",
        """CREATE TABLE metrics (
            transaction_id VARCHAR NOT NULL,
            seq INTEGER NOT NULL,
            offset_ns BIGINT,
            name VARCHAR NOT NULL,
            value DOUBLE,
            labels JSON
        )""",
    ],
    # A chunk a policy passes through unchanged (the very object received is sent) is
    # stored once: its ingress row also holds its egress index and offset, and the
    # ``chunks`` view lists it twice, as before. Half the rows for passthrough
    # streams, so a write costs less.
    3: [
        "ALTER TABLE chunks RENAME TO chunk_rows",
        "ALTER TABLE chunk_rows ADD COLUMN egress_index INTEGER",
        "ALTER TABLE chunk_rows ADD COLUMN egress_offset_ns BIGINT",
        f"""CREATE VIEW chunks AS
            SELECT transaction_id, direction, chunk_index, offset_ns, {_CHUNK_DATA}
            FROM chunk_rows
            UNION ALL
            SELECT transaction_id, 'egress' AS direction, egress_index AS chunk_index,
                egress_offset_ns AS offset_ns, {_CHUNK_DATA}
            FROM chunk_rows WHERE egress_index IS NOT NULL""",
    ],
    # What was changed to store a transaction that could not be stored as it was
    # (``_safe``: cut depth, escaped surrogates, truncated text, a rewrite after a
    # failed write, a replay from the dead-letter file); NULL when nothing was.
    4: ["ALTER TABLE transactions ADD COLUMN storage_notes JSON"],
    # Where a transaction came from, as columns (they are also in ``tags``, where they
    # are set): the wire API the gateway served it on (chat, messages, responses), and
    # for a shadow policy's transaction the live transaction it shadowed, the shadow's
    # name and how many ingress chunks it never saw because it fell behind.
    5: [
        "ALTER TABLE transactions ADD COLUMN api VARCHAR",
        "ALTER TABLE transactions ADD COLUMN shadow_of VARCHAR",
        "ALTER TABLE transactions ADD COLUMN shadow_name VARCHAR",
        "ALTER TABLE transactions ADD COLUMN shadow_dropped INTEGER",
    ],
}

SCHEMA_VERSION = max(MIGRATIONS)

# What queries read (``chunks`` is a view since version 3)...
TABLES = ("transactions", "payloads", "chunks", "hooks", "events", "metrics")
# ...and what the recorder writes.
WRITE_TABLES = ("transactions", "payloads", "chunk_rows", "hooks", "events", "metrics")

# The raw chunk as JSON: the stored original when the chunk had fields the columns do
# not hold (``raw_json``), else rebuilt from the columns.
RAW_CHUNK_SQL = """COALESCE(raw_json, to_json({
    'id': response_id, 'created': created, 'model': model,
    'object': 'chat.completion.chunk', 'system_fingerprint': system_fingerprint,
    'choices': [{'index': 0, 'finish_reason': finish_reason, 'delta': {
        'role': role, 'content': content, 'reasoning_content': reasoning,
        'tool_calls': CASE WHEN tool_calls IS NULL THEN NULL ELSE list_transform(tool_calls,
            lambda t: {'index': t."index", 'id': t.id, 'type': 'function',
                  'function': {'name': t."name", 'arguments': t.arguments}}) END}}],
    'usage': CASE WHEN total_tokens IS NULL AND prompt_tokens IS NULL THEN NULL ELSE
        {'prompt_tokens': prompt_tokens, 'completion_tokens': completion_tokens,
         'total_tokens': total_tokens} END
}))"""


def current_version(con: Any) -> int:
    """The schema version of the database behind ``con`` (0: blank)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_name = 'schema_version' AND table_schema = 'main' "
        "AND table_catalog = current_database()"
    ).fetchall()[0][0]
    if not exists:
        return 0
    # fetchall: a result left unfinished (fetchone) makes the connection's next
    # query fail with "unfinished result" (in-memory and user connections).
    (version,) = con.execute("SELECT max(version) FROM schema_version").fetchall()[0]
    return int(version or 0)


def migrate(con: Any, upto: int | None = None) -> int:
    """Apply every migration above the current version (up to ``upto``); returns the
    version reached. Each migration runs in its own DB transaction."""
    target = SCHEMA_VERSION if upto is None else upto
    version = current_version(con)
    if version > SCHEMA_VERSION:
        from luthien_lab.errors import StoreError

        raise StoreError(
            f"the store has schema version {version}, newer than this luthien-lab "
            f"understands ({SCHEMA_VERSION}): upgrade luthien-lab to read it."
        )
    if version == 0:
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
    for number in sorted(MIGRATIONS):
        if version < number <= target:
            con.execute("BEGIN TRANSACTION")
            try:
                for statement in MIGRATIONS[number]:
                    con.execute(statement)
                con.execute("INSERT INTO schema_version (version) VALUES (?)", [number])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            version = number
    return version
