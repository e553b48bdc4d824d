"""Each fault, as litellm sees it: exception type, when, and no hidden retries."""

from __future__ import annotations

import time

import pytest

from luthien_lab.provider import ScriptedResponse
from tests.provider.helpers import ANTHROPIC, MODELS, OPENAI, kwargs

pytestmark = pytest.mark.timeout(20)

TEXT = ScriptedResponse(text="one two three four five six", chunk_size=4)


def _count(provider, key):
    return len([r for r in provider.requests if r.script_key == key])


async def _call(provider, litellm, model, fault, *, stream, timeout=5):
    key = provider.script(TEXT)
    got: list[str] = []
    headers = {"x-luthien-script": key, "x-luthien-fault": fault}
    error = None
    try:
        resp = await litellm.acompletion(
            **kwargs(provider, model, stream=stream, extra_headers=headers, timeout=timeout)
        )
        if stream:
            async for chunk in resp:
                if chunk.choices and chunk.choices[0].delta.content:
                    got.append(chunk.choices[0].delta.content)
        else:
            got.append(resp.choices[0].message.content)
    except Exception as exc:
        error = exc
    assert _count(provider, key) == 1, "litellm retried behind our back"
    return got, error


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [True, False])
async def test_http_429_is_rate_limit_error(provider, litellm, model, stream):
    got, error = await _call(provider, litellm, model, "http_429", stream=stream)
    assert isinstance(error, litellm.RateLimitError), repr(error)
    assert error.status_code == 429
    assert got == []


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [True, False])
async def test_http_500_is_internal_server_error(provider, litellm, model, stream):
    _got, error = await _call(provider, litellm, model, "http_500", stream=stream)
    assert isinstance(error, litellm.InternalServerError), repr(error)
    assert error.status_code == 500


async def test_429_has_retry_after_and_provider_shaped_body(provider):
    import httpx

    async with httpx.AsyncClient() as client:
        r = await client.post(
            f"{provider.openai_base}/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
            headers={"x-luthien-fault": "http_429"},
        )
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert r.json()["error"]["code"] == "rate_limit_exceeded"
        r = await client.post(
            f"{provider.anthropic_base}/v1/messages",
            json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
            headers={"x-luthien-fault": "http_500"},
        )
        assert r.status_code == 500
        assert r.json() == {
            "type": "error",
            "error": {"type": "api_error", "message": r.json()["error"]["message"]},
        }


@pytest.mark.parametrize("model", MODELS)
async def test_drop_mid_stream_raises_during_iteration(provider, litellm, model):
    got, error = await _call(provider, litellm, model, "drop;after=2", stream=True)
    assert got == ["one ", "two "], "the chunks before the drop arrive"
    assert isinstance(error, litellm.exceptions.MidStreamFallbackError), repr(error)
    assert isinstance(error.original_exception, litellm.APIConnectionError)


@pytest.mark.parametrize("model", MODELS)
async def test_drop_non_streaming(provider, litellm, model):
    _got, error = await _call(provider, litellm, model, "drop", stream=False)
    assert isinstance(error, litellm.InternalServerError), repr(error)


@pytest.mark.parametrize("model", MODELS)
async def test_stall_longer_than_timeout_times_out(provider, litellm, model):
    start = time.monotonic()
    got, error = await _call(
        provider, litellm, model, "stall;after=1;seconds=10", stream=True, timeout=1
    )
    elapsed = time.monotonic() - start
    # Only the first chunk: the client gave up inside the 10 s stall (a stall that ran
    # out would have sent the rest), and not before its 1 s timeout.
    assert got == ["one "]
    assert elapsed >= 0.9
    if model == OPENAI:
        assert isinstance(error, litellm.Timeout), repr(error)
    else:
        assert isinstance(error, litellm.exceptions.MidStreamFallbackError), repr(error)
        assert isinstance(error.original_exception, litellm.Timeout)


@pytest.mark.parametrize("model", MODELS)
async def test_stall_non_streaming_times_out(provider, litellm, model):
    _got, error = await _call(provider, litellm, model, "stall;seconds=10", stream=False, timeout=1)
    assert isinstance(error, litellm.Timeout), repr(error)


async def test_short_stall_resumes(provider, litellm):
    start = time.monotonic()
    got, error = await _call(provider, litellm, OPENAI, "stall;after=1;seconds=0.5", stream=True)
    assert error is None
    assert "".join(got) == TEXT.text
    assert time.monotonic() - start >= 0.5


@pytest.mark.parametrize("model", MODELS)
async def test_malformed_sse_line(provider, litellm, model):
    got, error = await _call(provider, litellm, model, "malformed;after=2", stream=True)
    assert got == ["one ", "two "]
    assert isinstance(error, litellm.exceptions.MidStreamFallbackError), repr(error)
    assert isinstance(error.original_exception, litellm.APIConnectionError)


@pytest.mark.parametrize("model", MODELS)
async def test_malformed_json_body(provider, litellm, model):
    _, error = await _call(provider, litellm, model, "malformed", stream=False)
    expected = litellm.InternalServerError if model == OPENAI else litellm.APIConnectionError
    assert isinstance(error, expected), repr(error)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [True, False])
async def test_empty_answer(provider, litellm, model, stream):
    got, error = await _call(provider, litellm, model, "empty", stream=stream)
    assert error is None
    assert [g for g in got if g] == []


async def test_fault_in_script(provider, litellm):
    key = provider.script(
        ScriptedResponse(text="abcdef", chunk_size=1, fault="drop", fault_after=3)
    )
    with pytest.raises(litellm.exceptions.MidStreamFallbackError):
        resp = await litellm.acompletion(
            **kwargs(provider, ANTHROPIC, stream=True, extra_headers={"x-luthien-script": key})
        )
        async for _ in resp:
            pass
    assert [r.fault for r in provider.requests if r.script_key == key] == ["drop"]


async def test_unknown_fault_is_bad_request(provider, litellm):
    with pytest.raises(litellm.BadRequestError):
        await litellm.acompletion(
            **kwargs(provider, OPENAI, extra_headers={"x-luthien-fault": "nope"})
        )


def test_unknown_fault_in_script_rejected():
    with pytest.raises(ValueError, match="unknown fault"):
        ScriptedResponse(fault="explode")
