"""Gateways with shadow policies in front of the local provider, for the three wire
APIs; the provider and ``serve`` come from the gateway tests."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from luthien_lab import NoOpPolicy
from luthien_lab.gateway import GatewaySettings, UpstreamSettings, create_app
from luthien_lab.provider import ScriptedResponse, ScriptedToolCall
from luthien_lab.store import Store
from tests.gateway import conftest as gateway_tests
from tests.gateway.conftest import serve

provider = gateway_tests.provider  # the session's local provider, shared with the gateway tests

APIS = ("chat", "messages", "responses")
PATHS = {
    "chat": "/v1/chat/completions",
    "messages": "/v1/messages",
    "responses": "/v1/responses",
}
SCRIPT = ScriptedResponse(
    text_chunks=["The magic ", "word is ", "apple, ", "and the ", "magic stays."],
    tool_calls=[ScriptedToolCall(name="lookup", arguments={"q": "magic"})],
)


def upstream(local: Any, api: str) -> UpstreamSettings:
    if api == "messages":
        return UpstreamSettings(api_base=local.url, provider="anthropic")
    if api == "responses":
        return UpstreamSettings(api_base=local.openai_base, responses_api="native")
    return UpstreamSettings(api_base=local.openai_base)


def body(api: str, prompt: str, stream: bool) -> dict[str, Any]:
    if api == "messages":
        return {
            "model": "claude-x",
            "max_tokens": 100,
            "stream": stream,
            "messages": [{"role": "user", "content": prompt}],
        }
    if api == "responses":
        return {"model": "gpt-4o-mini", "input": prompt, "stream": stream}
    return {
        "model": "gpt-4o-mini",
        "stream": stream,
        "messages": [{"role": "user", "content": prompt}],
    }


def headers(api: str, key: str) -> dict[str, str]:
    out = {"x-luthien-script": key}
    if api == "messages":
        out.update({"anthropic-version": "2023-06-01", "x-api-key": "sk-client"})
    return out


@dataclass
class Gateway:
    url: str
    store: str
    app: Any


@contextlib.contextmanager
def gateway(
    local: Any, api: str, tmp_path: Any, shadows: Any = None, policy: Any = None, **settings: Any
) -> Iterator[Gateway]:
    """A gateway recording to a fresh store (written when the block ends)."""
    store = str(tmp_path / f"{api}-{len(list(tmp_path.iterdir()))}.duckdb")
    config = GatewaySettings(upstream=upstream(local, api), **settings)
    app = create_app(policy or NoOpPolicy(), settings=config, store=store, shadows=shadows)
    with serve(app) as url:
        yield Gateway(url, store, app)


def send(local: Any, url: str, api: str, prompt: str, stream: bool) -> httpx.Response:
    key = local.script(SCRIPT)
    response = httpx.post(
        url + PATHS[api], json=body(api, prompt, stream), headers=headers(api, key), timeout=30
    )
    assert response.status_code == 200, response.text
    return response


_IDS = re.compile(rb"\b(chatcmpl|resp|msg|rs|fc|call|toolu)[-_]local\w*")
_CLOCK = re.compile(rb'"(created|created_at|completed_at)": ?\d+')


def normalized(response: httpx.Response) -> bytes:
    """The response's bytes, its transaction id and the provider's ids and clocks
    blanked (they differ from one request to the next)."""
    raw = response.content.replace(response.headers["x-luthien-transaction-id"].encode(), b"TID")
    return _CLOCK.sub(rb'"\1": 0', _IDS.sub(rb"\1_ID", raw))


def transactions(store_path: str) -> list[dict[str, Any]]:
    """Every recorded transaction, with its final response text."""
    store = Store(store_path, read_only=True)
    try:
        frame = store.sql(
            "SELECT transaction_id, status, error_type, error, api, shadow_of, shadow_name, "
            "shadow_dropped, policy_class FROM transactions ORDER BY started_at"
        )
        rows = frame.to_dict("records")
        for row in rows:
            for column in ("shadow_of", "shadow_name", "shadow_dropped", "api", "error"):
                row[column] = _none(row[column])
            try:
                pair = store.response_pair(row["transaction_id"])
                row["final"] = pair.loc["final", "response"]
                row["final_request"] = pair.loc["final", "request"]
            except KeyError:
                row["final"] = row["final_request"] = None
            row["chunks"] = (
                store.sql(
                    "SELECT direction, count(*) AS n FROM chunks WHERE transaction_id = ? "
                    "GROUP BY direction",
                    [row["transaction_id"]],
                )
                .set_index("direction")["n"]
                .to_dict()
            )
        return rows
    finally:
        store.close()


def _none(value: Any) -> Any:
    try:
        import pandas as pd

        return None if pd.isna(value) else value
    except (TypeError, ValueError):
        return value


def text_of(response: Any) -> str:
    if not response:
        return ""
    if isinstance(response, str):
        import json

        response = json.loads(response)
    return response["choices"][0]["message"].get("content") or ""
