"""Prompt-case datasets and recordings: format, loader, errors, replay."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from luthien_lab.datasets import (
    DEFAULT_PROMPTS,
    DEFAULT_RECORDINGS,
    Dataset,
    Recording,
    Sample,
    dump_recordings,
    load_recordings,
)
from luthien_lab.errors import DatasetError
from luthien_lab.provider import ScriptedResponse

pytestmark = pytest.mark.timeout(30)

SCENARIOS = {
    "text-short", "text-long", "split-pattern", "multibyte", "multibyte-char-by-char",
    "tool-one", "tool-several", "tool-parallel", "text-then-tool", "thinking-tool",
    "refusal", "empty",
}  # fmt: skip


def test_bundled_prompts_cover_the_scenarios():
    ds = Dataset.load()
    assert ds.path == DEFAULT_PROMPTS
    assert {s.id for s in ds} >= SCENARIOS
    assert len(ds) == len(ds.samples) >= len(SCENARIOS)
    assert ds["split-pattern"].response.text_chunks == [
        "ChatGPT is made by Open",
        "AI, a research company in San Francisco.",
    ]
    assert ds[0].id == ds.samples[0].id
    with pytest.raises(KeyError):
        ds["nope"]


def test_sample_request_and_messages():
    s = Dataset.load()["system-prompt"]
    assert s.messages == [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "What are you?"},
    ]
    req = s.request(model="anthropic/claude-3", stream=False)
    assert req == {"model": "anthropic/claude-3", "messages": s.messages, "stream": False}
    tool = Dataset.load()["tool-one"].request()
    assert tool["tools"][0]["function"]["name"] == "get_weather" and tool["stream"] is True
    assert isinstance(Dataset.load()["tool-one"].response, ScriptedResponse)


def test_filter_by_tag():
    ds = Dataset.load()
    tools = ds.filter(tag="tools")
    assert len(tools) >= 4 and all("tools" in s.tags for s in tools)
    assert "tools" in ds.tags
    assert len(ds.filter(ids=["empty", "refusal"])) == 2


def test_roundtrip(tmp_path):
    ds = Dataset.load()
    ds.dump(tmp_path / "p.jsonl")
    again = Dataset.load(tmp_path / "p.jsonl")
    assert [s.to_dict() for s in again] == [s.to_dict() for s in ds]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"id": "a"}', "'prompt' must be a non-empty string"),
        ('{"id": "a", "prompt": "p", "colour": 1}', "unknown key"),
        ('{"id": "a", "prompt": "p", "tags": "x"}', "'tags' must be a list"),
        ('{"id": "a", "prompt": "p", "response": {"fault": "boom"}}', "bad 'response'"),
        ('{"id": "a", "prompt": "p", "response": {"txt": "x"}}', "bad 'response'"),
    ],
)
def test_malformed_prompt_file_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "ok", "prompt": "fine"}\n\n' + line + "\n")
    with pytest.raises(DatasetError, match=message) as info:
        Dataset.load(path)
    assert f"{path}:3" in str(info.value)


def test_duplicate_ids_and_missing_file(tmp_path):
    path = tmp_path / "dup.jsonl"
    path.write_text('{"id": "a", "prompt": "x"}\n{"id": "a", "prompt": "y"}\n')
    with pytest.raises(DatasetError, match=r"dup.jsonl:2: duplicate id 'a' \(first on line 1\)"):
        Dataset.load(path)
    with pytest.raises(DatasetError, match="no such dataset file"):
        Dataset.load(tmp_path / "missing.jsonl")


def test_bundled_recordings_load_as_litellm_chunks():
    from litellm.types.utils import ModelResponseStream

    recs = load_recordings()
    assert DEFAULT_RECORDINGS.stat().st_size < 2_000_000
    ids = {r.id for r in recs}
    for case in SCENARIOS - {"tool-parallel"}:
        assert f"{case}@openai/gpt-4o-mini" in ids
        assert f"{case}@anthropic/claude-sonnet-4-5" in ids
    assert "tool-parallel@openai/gpt-4o-mini" in ids
    for rec in recs:
        chunks = rec.chunks()
        assert chunks and all(isinstance(c, ModelResponseStream) for c in chunks)
        assert len(rec.offsets) == len(chunks)
        assert rec.response is not None
        assert rec.finish_reason in ("stop", "tool_calls", "content_filter")


def test_recordings_cover_the_tricky_shapes():
    recs = {r.id: r for r in load_recordings()}
    split = recs["split-pattern@openai/gpt-4o-mini"]
    texts = [c["choices"][0]["delta"].get("content") for c in split.chunk_data if c["choices"]]
    assert (
        "ChatGPT is made by Open" in texts and "AI, a research company in San Francisco." in texts
    )
    multi = recs["multibyte@anthropic/claude-sonnet-4-5"]
    assert multi.text() == "A naïve café in 日本語: 🎉🎉 and a coder 👩\u200d💻 at work."
    parallel = recs["tool-parallel@openai/gpt-4o-mini"]
    assert (
        max(
            len(c["choices"][0]["delta"].get("tool_calls") or [])
            for c in parallel.chunk_data
            if c["choices"]
        )
        == 3
    )
    thinking = recs["thinking-tool@anthropic/claude-sonnet-4-5"]
    assert any(
        c["choices"] and c["choices"][0]["delta"].get("reasoning_content")
        for c in thinking.chunk_data
    )
    assert recs["empty@openai/gpt-4o-mini"].text() == ""
    assert recs["refusal@openai/gpt-4o-mini"].response["choices"][0]["message"]["refusal"]


async def test_replay_pacing(monkeypatch):
    rec = Recording(
        id="r", model="m", protocol="openai", request={"messages": []},
        chunk_data=[
            {"id": "x", "created": 1, "model": "m", "object": "chat.completion.chunk",
             "choices": [{"index": 0, "delta": {"content": str(i)}}]}
            for i in range(4)
        ],
        offsets=[0.0, 0.1, 0.2, 0.3],
    )  # fmt: skip
    start = time.monotonic()
    got = [c.choices[0].delta.content async for c in rec.replay("original")]
    assert got == ["0", "1", "2", "3"] and time.monotonic() - start >= 0.28
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def counted_sleep(delay, *args):
        waits.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", counted_sleep)
    assert len([c async for c in rec.replay("fast")]) == 4
    assert waits == []  # fast pacing never waits
    assert len([c async for c in rec.replay("original")]) == 4
    assert len(waits) == 3  # original pacing waits before each chunk after the first
    monkeypatch.undo()
    with pytest.raises(ValueError, match="pacing"):
        await anext(rec.replay("slow"))


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"protocol": "grpc"}, "'protocol' must be"),
        ({"offsets": [0.0]}, "'offsets' must be a list of 2"),
        ({"offsets": [0.2, 0.1]}, "must not decrease"),
        ({"chunks": "x"}, "'chunks' must be a list"),
        ({"request": {}}, "'messages' list"),
        ({"extra": 1}, "unknown key"),
    ],
)
def test_malformed_recording_names_file_and_line(tmp_path, patch, message):
    good = load_recordings()[0].to_dict()
    good["chunks"], good["offsets"] = good["chunks"][:2], good["offsets"][:2]
    path = tmp_path / "rec.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "id": "b", **patch}) + "\n")
    with pytest.raises(DatasetError, match=message) as info:
        load_recordings(path)
    assert f"{path}:2" in str(info.value)


def test_recordings_folder_and_dump(tmp_path):
    recs = load_recordings()[:3]
    dump_recordings(recs[:2], tmp_path / "a.jsonl")
    dump_recordings(recs[2:], tmp_path / "b.jsonl")
    again = load_recordings(tmp_path)
    assert [r.to_dict() for r in again] == [r.to_dict() for r in recs]


def test_sample_from_dict_defaults():
    s = Sample.from_dict({"id": "x", "prompt": "p"})
    assert s.tags == [] and s.response == ScriptedResponse() and s.tools is None


def test_to_script_keeps_boundaries():
    rec = {r.id: r for r in load_recordings()}["multibyte@openai/gpt-4o-mini"]
    script = rec.to_script()
    assert script.text_chunks == [
        "A naï",
        "ve café in 日",
        "本語: 🎉",
        "🎉 and a coder 👩",
        "\u200d💻 at work.",
    ]
    assert len(script.offsets) == 5


def test_asyncio_is_not_needed_for_loading():
    # loading never touches an event loop (usable from plain scripts)
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    assert load_recordings()
