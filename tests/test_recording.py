"""record(): live traffic into the recording format, against the local provider."""

from __future__ import annotations

import json

import pytest

from luthien_lab.datasets import (
    DEFAULT_PROMPTS,
    DEFAULT_RECORDINGS,
    Dataset,
    arecord,
    load_recordings,
    make_fixtures,
    record,
)
from luthien_lab.datasets.cli import configure, run
from luthien_lab.provider import local_provider

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _local(monkeypatch):
    monkeypatch.setenv("LUTHIEN_LAB_PROVIDER", "local")


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"])
def test_record_samples_from_the_local_provider(tmp_path, model):
    ds = Dataset.load().filter(ids=["split-pattern", "tool-one"])
    out = tmp_path / "rec.jsonl"
    recs = record(ds, out, model=model, with_response=True)
    loaded = load_recordings(out)
    assert [r.id for r in loaded] == [f"split-pattern@{model}", f"tool-one@{model}"]
    assert loaded[0].text() == "ChatGPT is made by OpenAI, a research company in San Francisco."
    assert loaded[0].provider == "local" and loaded[0].case == "split-pattern"
    assert loaded[1].finish_reason == "tool_calls"
    assert loaded[1].response["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == (
        "get_weather"
    )
    assert all(b >= a for a, b in zip(loaded[0].offsets, loaded[0].offsets[1:], strict=False))
    assert [r.to_dict() for r in recs] == [r.to_dict() for r in loaded]


async def test_arecord_against_a_stand_in_for_a_real_provider(tmp_path, monkeypatch):
    """A key is set, so the request is 'remote': the local provider stands in for it."""
    monkeypatch.setenv("LUTHIEN_LAB_PROVIDER", "auto")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-looking")
    with local_provider() as p:
        p.add_case("live?", {"text_chunks": ["li", "ve!"]})
        recs = await arecord(
            [{"id": "live-1", "messages": [{"role": "user", "content": "live?"}],
              "api_base": p.openai_base, "api_key": "sk-real-looking"}],
            tmp_path / "live.jsonl",
            model="openai/gpt-4o-mini",
        )  # fmt: skip
        assert p.requests[0].headers["authorization"] == "Bearer sk-real-looking"
    assert recs[0].id == "live-1" and recs[0].provider == "openai"
    assert "api_key" not in recs[0].request and "api_base" not in recs[0].request
    assert recs[0].text() == "live!"
    assert recs[0].recorded_at


async def test_sync_record_inside_a_running_loop(tmp_path):
    recs = record(Dataset.load().filter(ids=["text-short"]), None, model="openai/gpt-4o-mini")
    assert recs[0].text() == "Hello! How can I help you today?"


def test_record_cli(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    configure(parser)
    out = tmp_path / "cli.jsonl"
    args = parser.parse_args(
        ["--dataset", str(DEFAULT_PROMPTS), "--model", "anthropic/claude-sonnet-4-5",
         "--out", str(out), "--tag", "refusal"]
    )  # fmt: skip
    assert run(args) == 0
    assert "wrote 1 recordings" in capsys.readouterr().out
    (rec,) = load_recordings(out)
    assert rec.finish_reason == "content_filter" and rec.protocol == "anthropic"
    assert (
        run(parser.parse_args(["--out", str(tmp_path / "x.jsonl"), "--dataset", "nope.jsonl"])) == 1
    )
    assert run(parser.parse_args([])) == 2


def test_committed_fixtures_are_up_to_date(tmp_path):
    out = tmp_path / "fixtures.jsonl"
    make_fixtures(DEFAULT_PROMPTS, out)
    fresh = [json.loads(line) for line in out.read_text().splitlines()]
    committed = [json.loads(line) for line in DEFAULT_RECORDINGS.read_text().splitlines()]
    assert fresh == committed, "run: luthien-lab record --make-fixtures"
