"""Secrets are never written: planted in every place the store writes, then looked for
in the database file, its write-ahead log, the dead-letter file and the logs."""

from __future__ import annotations

import json
import logging

import pytest
from store_testkit import orchestrator, request, run_all

from luthien_lab import ScriptedLLMClient
from luthien_lab.policies.base import Policy
from luthien_lab.store import DuckDBRecorder, Store
from luthien_lab.store._redact import REDACTED, Redactor, is_secret_key

# Each planted value is unique, so finding any of it anywhere means it leaked.
PLANTED = {
    "openai_key": "oa-planted-1111",
    "access_key": "ak-planted-2222",
    "auth_header": "Basic cGxhbnRlZDpwYXNzMzMzMw==",
    "api_base": "http://user:pw-planted-4444@proxy.local:8080/v1",
    "database_url": "postgres://app:pg-planted-5555@db.local/app",
    "webhook": "https://admin:adm-planted-6666@hooks.local/x",
    "x_auth_token": "xat-planted-7777",
    "proxy_authorization": "Bearer prx-planted-8888abcd",
    "refresh_token": "rt-planted-9999",
    "secret_value": "cred-planted-1212",
    "note": "sk-plantedSK0123456789",
    "judge_api_key": "jk-planted-1313",
    "password": "pw-planted-1414",
    "upstream": "https://u:up-planted-1515@x.local",
    "auth": "ev-planted-1616",
    "event_url": "redis://:ev-url-planted-1717@cache.local:6379",
    "error_url": "postgres://app:err-planted-1818@db.local",
    "signed_url": "https://x.local/file?sig=sg-planted-1919&user=bob",
}
# What the grep looks for: the distinctive part of each planted value.
NEEDLES = [
    "planted-1111",
    "planted-2222",
    "cGxhbnRlZDpwYXNzMzMzMw",
    "planted-4444",
    "planted-5555",
    "planted-6666",
    "planted-7777",
    "planted-8888",
    "planted-9999",
    "planted-1212",
    "plantedSK0123456789",
    "planted-1313",
    "planted-1414",
    "planted-1515",
    "planted-1616",
    "planted-1717",
    "planted-1818",
    "planted-1919",
]
VISIBLE = "visible-marker-7f3a9c"


class ConfiguredPolicy(Policy):
    """A policy whose config and events carry secrets."""

    def __init__(self) -> None:
        self.config = {
            "judge_api_key": PLANTED["judge_api_key"],
            "password": PLANTED["password"],
            "upstream": PLANTED["upstream"],
            "max_tokens": 77,
        }

    async def on_request(self, request, context):
        context.observability.emit_event(
            "checked",
            {"auth": PLANTED["auth"], "url": PLANTED["event_url"], "tokens": 5, "who": VISIBLE},
        )
        context.observability.add_span_attribute("api_key", PLANTED["access_key"])
        context.observability.record_metric("m", 1.0, {"access_token": PLANTED["refresh_token"]})
        return request


def _request():
    return request(
        VISIBLE,
        openai_key=PLANTED["openai_key"],
        access_key=PLANTED["access_key"],
        auth_header=PLANTED["auth_header"],
        api_base=PLANTED["api_base"],
        max_tokens=55,
        extra_headers={
            "X-Auth-Token": PLANTED["x_auth_token"],
            "Proxy-Authorization": PLANTED["proxy_authorization"],
            "X-Trace": "keep-trace",
        },
        metadata={
            "database_url": PLANTED["database_url"],
            "webhook": PLANTED["webhook"],
            "session": {"refresh_token": PLANTED["refresh_token"]},
            "credentials": {"user": "u", "secret_value": PLANTED["secret_value"]},
            "note": f"call it with {PLANTED['note']}",
            "download": PLANTED["signed_url"],
            "usage": {
                "prompt_tokens": 11,
                "completion_tokens": 12,
                "input_tokens": 13,
                "output_tokens": 14,
                "cache_key": 15,
            },
        },
    )


def _leaks(data: bytes) -> list[str]:
    return [needle for needle in NEEDLES if needle.encode() in data]


async def test_planted_secrets_reach_no_file_and_no_log(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "secrets.duckdb"
    # Exclusive: nothing is checkpointed before close, so the rows sit in the WAL.
    store = Store(path, exclusive=True)
    recorder = DuckDBRecorder(store)
    orch = orchestrator(recorder, policy=ConfiguredPolicy())
    failing = orchestrator(recorder, policy=ConfiguredPolicy())
    failing.llm_client = ScriptedLLMClient(
        [], error=RuntimeError(f"upstream {PLANTED['error_url']} said no"), fail_after=0
    )
    try:
        await run_all(orch, [_request()])
        with pytest.raises(Exception, match="said no"):
            await run_all(failing, [_request()])
        recorder.flush()
        wal = path.with_name(path.name + ".wal").read_bytes()
        assert VISIBLE.encode() in wal  # the grep means something
        assert _leaks(wal) == []
        stored = store.sql("SELECT * FROM payloads")
        req = json.loads(stored["original_request"].iloc[0])
        assert req["max_tokens"] == 55
        assert req["extra_headers"]["X-Trace"] == "keep-trace"
        assert req["metadata"]["usage"]["cache_key"] == 15
        assert req["metadata"]["usage"]["input_tokens"] == 13
        assert req["openai_key"] == req["access_key"] == req["auth_header"] == REDACTED
        assert req["api_base"] == "http://[REDACTED]@proxy.local:8080/v1"
        config = json.loads(store.transactions()["policy_config"].iloc[0])
        assert config["max_tokens"] == 77 and config["password"] == REDACTED
        assert "[REDACTED]" in store.transactions(status="error")["error"].iloc[0]
    finally:
        recorder.close()
        store.close()
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert VISIBLE.encode() in data
    assert _leaks(data) == []
    assert _leaks(caplog.text.encode()) == []


async def test_a_failed_write_is_logged_without_what_it_quoted(tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    recorder = DuckDBRecorder(tmp_path / "logged.duckdb")
    real = recorder.store.write_tables
    calls = []

    def fail_once_quoting_secrets(tables, *args, **kwargs):
        # A DuckDB error quoting a value: what the recorder logs must not leak it.
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError(f"could not insert {PLANTED['error_url']} ({PLANTED['note']})")
        return real(tables, *args, **kwargs)

    monkeypatch.setattr(recorder.store, "write_tables", fail_once_quoting_secrets)
    try:
        await run_all(orchestrator(recorder, policy=ConfiguredPolicy()), [_request()])
        recorder.flush()
        assert len(recorder.store.transactions()) == 1
    finally:
        recorder.close()
    assert "could not insert" in caplog.text  # the failure was logged...
    assert _leaks(caplog.text.encode()) == []  # ...without what it quoted


def test_a_parked_transaction_is_redacted_too(tmp_path, monkeypatch):
    from store_testkit import drive_stream, make_chunk

    from luthien_lab.errors import StoreLockedError

    path = tmp_path / "parked.duckdb"
    recorder = DuckDBRecorder(path)
    monkeypatch.setattr(
        recorder.store,
        "write_tables",
        lambda *a, **k: (_ for _ in ()).throw(StoreLockedError("busy")),
    )
    try:
        drive_stream(recorder, "tx-p", [make_chunk("a")], request=_request())
        recorder.flush()
        assert recorder.parked == 1
    finally:
        monkeypatch.undo()
        recorder._parked.clear()  # no retry: the file is what is checked
        recorder.close()
    letters = (tmp_path / "parked.duckdb.deadletter.jsonl").read_bytes()
    assert VISIBLE.encode() in letters
    assert _leaks(letters) == []


@pytest.mark.parametrize(
    ("key", "value", "redacted"),
    [
        ("openai_key", "x-123456", True),
        ("Access-Key", "x-123456", True),
        ("auth_header", "Basic abcdef", True),
        ("AUTHORIZATION", "x-123456", True),
        ("credentials_file", "x-123456", True),
        ("client_secret", "x-123456", True),
        ("db_password", "x-123456", True),
        ("session_token", "x-123456", True),
        ("max_tokens", 100, False),
        ("prompt_tokens", 10, False),
        ("completion_tokens", 10, False),
        ("input_tokens", 10, False),
        ("output_tokens", 10, False),
        ("cache_key", 3, False),
        ("api_key", None, False),
        ("model", "gpt-4o", False),
        ("user", "bob", False),
    ],
)
def test_the_key_rule(key, value, redacted):
    out = Redactor().redact({key: value})
    assert (out[key] == REDACTED) is redacted
    if not redacted:
        assert out[key] == value


def test_schemas_and_name_value_pairs():
    tool = {"type": "object", "properties": {"api_key": {"type": "string", "description": "k"}}}
    assert Redactor().redact({"parameters": tool}) == {"parameters": tool}
    assert Redactor().redact({"key": "user", "value": "bob"}) == {"key": "user", "value": "bob"}
    assert Redactor().redact({"key": "api_key", "value": "v-123456"})["value"] == REDACTED
    assert is_secret_key("X-Session-Id") and not is_secret_key("X-Request-Id")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://admin:pw@example.com/x", "https://[REDACTED]@example.com/x"),
        ("postgres://app:pw@db/app", "postgres://[REDACTED]@db/app"),
        ("see http://user:pass@proxy:8080/v1 now", "see http://[REDACTED]@proxy:8080/v1 now"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: [REDACTED]"),
        ("Bearer abcdefgh12345", "[REDACTED]"),
        ("key sk-abcdefghijklmnop", "key [REDACTED]"),
        ("https://x/y?api_key=abc123&q=1", "https://x/y?api_key=[REDACTED]&q=1"),
        ("https://example.com/path", "https://example.com/path"),
        ("max_tokens=100", "max_tokens=100"),
    ],
)
def test_the_value_patterns(text, expected):
    assert Redactor().redact({"note": text}) == {"note": expected}


def test_chat_text_keeps_what_the_user_said():
    said = "my key is sk-abcdefghijklmnop, see https://a:b@c.d"
    message = {"messages": [{"role": "user", "content": said}]}
    assert Redactor().redact(message) == message
