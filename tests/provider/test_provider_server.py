"""Selection rules, HTTP plumbing, lifecycle, concurrency, replay and the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from luthien_lab.datasets import Recording, load_recordings
from luthien_lab.provider import (
    FAULT_HEADER,
    SCRIPT_HEADER,
    LocalProvider,
    ScriptedResponse,
    local_provider,
)
from tests.provider.helpers import ANTHROPIC, MODELS, OPENAI, collect, contents, kwargs

pytestmark = pytest.mark.timeout(30)


def _msgs(text):
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("model", MODELS)
async def test_case_default_and_echo(litellm, model):
    with local_provider() as p:
        p.add_case("  known prompt ", "case answer")
        r = await litellm.acompletion(**kwargs(p, model, messages=_msgs("known prompt")))
        assert r.choices[0].message.content == "case answer"
        r = await litellm.acompletion(**kwargs(p, model, messages=_msgs("something else")))
        assert r.choices[0].message.content == "Local echo: something else"
        p.set_default(ScriptedResponse(text="default answer"))
        r = await litellm.acompletion(**kwargs(p, model, messages=_msgs("something else")))
        assert r.choices[0].message.content == "default answer"
        assert [q.source for q in p.requests] == ["case", "echo", "default"]
        assert [q.prompt for q in p.requests][1] == "something else"


async def test_tool_result_does_not_rematch_the_case(litellm):
    with local_provider() as p:
        p.add_case("weather?", {"tool_calls": [{"name": "w", "arguments": {"c": "x"}}]})
        first = await litellm.acompletion(**kwargs(p, OPENAI, messages=_msgs("weather?")))
        call = first.choices[0].message.tool_calls[0]
        messages = [
            *_msgs("weather?"),
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ]
        second = await litellm.acompletion(**kwargs(p, OPENAI, messages=messages))
        assert second.choices[0].message.content == "Local echo: tool result received."
        assert p.requests[-1].source == "tool_result"


async def test_unknown_script_key_is_bad_request(provider, litellm):
    with pytest.raises(litellm.BadRequestError, match="unknown x-luthien-script"):
        await litellm.acompletion(
            **kwargs(provider, OPENAI, extra_headers={"x-luthien-script": "missing"})
        )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("model", MODELS)
async def test_fifty_concurrent_streams(provider, litellm, model):
    keys = [
        provider.script(ScriptedResponse(text=f"stream {i} " * 10, chunk_size=5, delay=0.005))
        for i in range(50)
    ]

    async def one(i):
        resp = await litellm.acompletion(
            **kwargs(
                provider, model, stream=True, timeout=30,
                extra_headers={"x-luthien-script": keys[i]},
            )
        )  # fmt: skip
        return "".join(contents(await collect(resp)))

    texts = await asyncio.gather(*(one(i) for i in range(50)))
    assert texts == [f"stream {i} " * 10 for i in range(50)]


@pytest.mark.timeout(60)
async def test_fifty_streams_are_in_flight_at_once(provider, litellm):
    """Fifty streams that each stall for a minute after their first chunk all get that
    first chunk: the provider holds them open at once. A provider serving one stream
    at a time would hold the second back behind the first stall, past the timeout."""
    keys = [
        provider.script(ScriptedResponse(text=f"held {i:02d} " * 4, chunk_size=8))
        for i in range(50)
    ]
    stall = {FAULT_HEADER: "stall;after=1;seconds=60"}

    async def first_text(i):
        resp = await litellm.acompletion(
            **kwargs(provider, OPENAI, stream=True, timeout=55,
                     extra_headers={SCRIPT_HEADER: keys[i], **stall})
        )  # fmt: skip
        try:
            async for chunk in resp:
                if chunk.choices and chunk.choices[0].delta.content:
                    return chunk.choices[0].delta.content
        finally:
            await resp.aclose()
        return None

    firsts = await asyncio.gather(*(first_text(i) for i in range(50)))
    assert firsts == [f"held {i:02d} " for i in range(50)]
    assert sorted(q.script_key for q in provider.requests if q.script_key in keys) == sorted(keys)


async def test_keep_alive_reuses_the_connection():
    with local_provider() as p:
        async with httpx.AsyncClient() as client:
            for _ in range(3):
                r = await client.post(
                    f"{p.openai_base}/chat/completions",
                    json={"model": "m", "messages": _msgs("hi"), "stream": True},
                )
                assert r.status_code == 200
                assert r.text.endswith("data: [DONE]\n\n")
        assert p.connections_accepted == 1
        assert len(p.requests) == 3


def test_raw_http_details():
    with local_provider() as p, httpx.Client() as client:
        # /chat/completions without /v1 works too
        r = client.post(f"{p.url}/chat/completions", json={"model": "m", "messages": _msgs("a")})
        assert r.json()["choices"][0]["message"]["content"] == "Local echo: a"
        # chunked request body
        body = json.dumps({"model": "m", "messages": _msgs("chunked")}).encode()
        r = client.post(f"{p.openai_base}/chat/completions", content=iter([body[:10], body[10:]]))
        assert r.json()["choices"][0]["message"]["content"] == "Local echo: chunked"
        assert client.post(f"{p.url}/nowhere", json={}).status_code == 404
        r = client.post(f"{p.anthropic_base}/v1/messages", content=b"{not json")
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
        assert client.get(f"{p.url}/health").json() == {"status": "ok"}
        assert client.get(f"{p.openai_base}/models").json()["object"] == "list"
        stream = client.post(
            f"{p.anthropic_base}/v1/messages",
            json={"model": "claude", "messages": _msgs("ab"), "stream": True},
        )
        events = [line[7:] for line in stream.text.splitlines() if line.startswith("event: ")]
        assert events[:2] == ["message_start", "ping"]
        assert events[-2:] == ["message_delta", "message_stop"]
        assert "content_block_delta" in events


def test_lifecycle_frees_port_and_thread():
    before = {t.ident for t in threading.enumerate()}
    p = LocalProvider()
    p.start()
    port = p.port
    assert p.start() is p  # idempotent
    p.stop()
    p.stop()  # idempotent
    assert {t.ident for t in threading.enumerate()} <= before
    with pytest.raises(RuntimeError, match="not running"):
        _ = p.url
    with socket.socket() as s:  # the port is free again
        s.bind(("127.0.0.1", port))
    with LocalProvider(port=port) as again:
        assert again.port == port
        assert again.openai_base == f"http://127.0.0.1:{port}/v1"
        assert again.anthropic_base == f"http://127.0.0.1:{port}"


def test_start_fails_clearly_on_a_busy_port():
    with local_provider() as p, pytest.raises(RuntimeError, match="could not start"):
        LocalProvider(port=p.port).start()


def test_stop_interrupts_a_stall():
    p = LocalProvider().start()
    key = p.script(ScriptedResponse(text="abc", fault="stall", stall_seconds=60))
    errors = []

    def call():
        try:
            with httpx.Client(timeout=30) as c:
                c.post(
                    f"{p.openai_base}/chat/completions",
                    json={"model": "m", "messages": _msgs("x"), "stream": True},
                    headers={"x-luthien-script": key},
                ).read()
        except httpx.HTTPError as exc:
            errors.append(exc)

    t = threading.Thread(target=call)
    t.start()
    while not p.requests:
        time.sleep(0.01)
    p.stop()
    # The client's error is what proves stop() cut the 60 s stall short (a stall that
    # ran out would end the stream cleanly); the join only keeps a hang from lasting.
    t.join(25)
    assert not t.is_alive()
    assert errors and isinstance(errors[0], httpx.RemoteProtocolError), errors


async def test_async_with(litellm):
    async with LocalProvider() as p:
        r = await litellm.acompletion(**kwargs(p, ANTHROPIC, messages=_msgs("async")))
        assert r.choices[0].message.content == "Local echo: async"
    assert not p.running


def test_litellm_kwargs(provider):
    assert provider.litellm_kwargs("claude-3-5-haiku") == {
        "api_base": provider.anthropic_base,
        "api_key": "sk-local",
    }
    assert provider.litellm_kwargs("openai/gpt-4o")["api_base"] == provider.openai_base


def _recording(protocol, offsets):
    chunks = [
        {"id": "x", "created": 1, "model": "m", "object": "chat.completion.chunk",
         "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}]}
        for t in ("a", "b", "c")
    ]  # fmt: skip
    return Recording(
        id=f"paced-{protocol}",
        model="m",
        protocol=protocol,
        request={"messages": _msgs("paced prompt")},
        chunk_data=chunks,
        offsets=offsets,
        finish_reason="stop",
    )


@pytest.mark.parametrize("model", MODELS)
async def test_replay_pacing_through_the_provider(litellm, model):
    protocol = "anthropic" if model == ANTHROPIC else "openai"
    # "original" waits as recorded; "fast" ignores the offsets: minutes apart here, yet
    # the stream arrives within the client's 5 s timeout.
    offsets = {"original": [0.1, 0.4, 0.7], "fast": [100.0, 400.0, 700.0]}
    waited = {}
    for pacing in ("original", "fast"):
        with local_provider(replay=[_recording(protocol, offsets[pacing])], pacing=pacing) as p:
            start = time.monotonic()
            resp = await litellm.acompletion(
                **kwargs(p, model, stream=True, messages=_msgs("paced prompt"))
            )
            assert contents(await collect(resp)) == ["a", "b", "c"]
            waited[pacing] = time.monotonic() - start
    assert waited["original"] >= 0.65


@pytest.mark.timeout(60)
async def test_every_bundled_recording_replays_identically(litellm):
    """Replaying a recording through the provider gives litellm the same chunks again."""
    recordings = load_recordings()
    assert len(recordings) >= 20

    def project(chunk):
        d = chunk if isinstance(chunk, dict) else chunk.model_dump(mode="json")
        out = []
        for ch in d.get("choices") or []:
            delta = ch.get("delta") or {}
            calls = [
                (c.get("index"), c.get("id"), (c.get("function") or {}).get("name"),
                 (c.get("function") or {}).get("arguments"))
                for c in delta.get("tool_calls") or []
            ]  # fmt: skip
            out.append(
                (delta.get("content") or "", delta.get("reasoning_content") or "", calls,
                 ch.get("finish_reason"))
            )  # fmt: skip
        return out

    with local_provider(replay=recordings) as p:
        for rec in recordings:
            resp = await litellm.acompletion(
                **kwargs(
                    p, rec.model, stream=True, messages=rec.request["messages"],
                    stream_options={"include_usage": True},
                    extra_headers={"x-luthien-script": rec.id},
                )
            )  # fmt: skip
            again = [project(c) for c in await collect(resp)]
            assert again == [project(c) for c in rec.chunk_data], rec.id


@pytest.mark.timeout(30)
def test_cli_serves_until_terminated(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "luthien_lab.cli", "provider", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"127.0.0.1:{port}" in first
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={"model": "m", "messages": _msgs("Say hello.")},
        )
        # the bundled prompt cases are loaded by default
        assert r.json()["choices"][0]["message"]["content"] == "Hello! How can I help you today?"
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "stopped (1 requests served)" in out
