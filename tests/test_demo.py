"""``luthien-lab demo``: what it prints, in order, and what it records."""

from __future__ import annotations

import re

import pytest

from luthien_lab.cli import main
from luthien_lab.demo import DEFAULT_PROMPT

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _local(monkeypatch):
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "LUTHIEN_LAB_PROVIDER"):
        monkeypatch.delenv(name, raising=False)


def _sections(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.endswith(":") and " " in line[:-1]]


def test_demo_streams_the_transformed_text_then_the_raw_and_what_fired(tmp_path, capsys):
    path = tmp_path / "demo.duckdb"
    assert main(["demo", "--store", str(path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "policy: UppercasePolicy   model: openai/gpt-4o-mini"
    assert lines[1] == f"prompt: {DEFAULT_PROMPT}"
    assert _sections(out) == ["transformed (as it streams):", "raw from the provider:"]
    transformed = lines[lines.index("transformed (as it streams):") + 1]
    raw = lines[lines.index("raw from the provider:") + 1]
    assert raw and transformed == raw.upper() and transformed != raw
    assert "raw tool call: get_weather(" in out and "final tool call: get_weather(" in out
    status = re.search(r"^status: (\w+)   chunks in: (\d+)   out: (\d+)$", out, re.M)
    assert status is not None and status.group(1) == "ok"
    assert int(status.group(2)) >= int(status.group(3)) > 0
    hooks = dict(re.findall(r"(\w+) x(\d+)", out.split("hooks fired: ", 1)[1].splitlines()[0]))
    assert hooks["on_request"] == "1" and hooks["on_stream_complete"] == "1"
    assert int(hooks["on_chunk_received"]) == int(status.group(2))
    recorded = re.search(r"^recorded transaction (\w+) to (.+)$", out, re.M)
    assert recorded is not None and recorded.group(2) == str(path)

    from luthien_lab.store import open_store

    store = open_store(path, read_only=True)
    try:
        rows = store.transactions()
        assert list(rows.transaction_id) == [recorded.group(1)]
        assert rows.status.iloc[0] == "ok"
    finally:
        store.close()


def test_noop_without_streaming_or_store(capsys):
    argv = ["demo", "--policy", "noop", "--no-stream", "--store", "none", "--prompt", "Hi"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("policy: NoOpPolicy")
    transformed = lines[lines.index("transformed (as it streams):") + 1]
    raw = lines[lines.index("raw from the provider:") + 1]
    assert transformed == raw != ""
    assert "recorded transaction" not in out


@pytest.mark.parametrize(
    ("policy", "needle"),
    [
        ("no_such_policy", "cannot make a policy from 'no_such_policy'"),
        ("luthien_lab.policies.uppercase:Nope", "has no class 'Nope'"),
        ("no_such_module:Policy", "cannot be imported"),
    ],
)
def test_a_bad_policy_fails_naming_it(policy, needle, capsys):
    assert main(["demo", "--policy", policy, "--store", "none"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("demo failed: ConfigError: ")
    assert needle in err
