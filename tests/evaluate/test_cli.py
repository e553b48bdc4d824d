"""``luthien-lab eval`` for CI: summary, golden regressions -> exit 1."""

from __future__ import annotations

import json

import pytest

from luthien_lab.cli import main

from .helpers import text_recording


def _dataset(tmp_path):
    path = tmp_path / "recordings.jsonl"
    cases = [text_recording("one", "Open", "AI says hi"), text_recording("two", "plain")]
    path.write_text("".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8")
    return path


def _config(tmp_path, replacement):
    path = tmp_path / f"policy-{len(replacement)}.yaml"
    path.write_text(
        "policy:\n"
        '  class: "luthien_lab.policies.string_replace:StringReplacePolicy"\n'
        f"  config:\n    replacements: {{OpenAI: {json.dumps(replacement)}}}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.timeout(90)
def test_eval_golden_cycle(tmp_path, capsys):
    data, golden = _dataset(tmp_path), tmp_path / "golden.jsonl"
    config = _config(tmp_path, "[REDACTED]")
    base = ["eval", "--config", str(config), "--dataset", str(data), "--golden", str(golden)]
    assert main(base) == 2  # no golden yet: a usage error, not a pass
    assert "no golden file" in capsys.readouterr().err
    assert main([*base, "--update-golden"]) == 0
    out = capsys.readouterr().out
    assert "StringReplacePolicy" in out and "change_rate" in out and "wrote 2" in out
    assert main(base) == 0
    assert "all 2 output(s) match" in capsys.readouterr().out
    changed = [
        "eval",
        "--config",
        str(_config(tmp_path, "***")),
        "--dataset",
        str(data),
        "--golden",
        str(golden),
    ]
    assert main(changed) == 1
    out = capsys.readouterr().out
    assert "1 regression(s)" in out and "one: text changed" in out


@pytest.mark.timeout(90)
def test_eval_with_policy_class_store_and_fuzz(tmp_path, capsys):
    data = _dataset(tmp_path)
    store = tmp_path / "runs.duckdb"
    argv = [
        "eval",
        "--policy",
        "naive_replace:NaiveReplacePolicy",
        "--dataset",
        str(data),
        "--store",
        str(store),
        "--fuzz",
        "10",
        "--concurrency",
        "2",
    ]
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
    try:
        assert main(argv) == 1  # the naive policy depends on chunk boundaries
    finally:
        sys.path.remove(str(Path(__file__).resolve().parents[2] / "examples"))
    out = capsys.readouterr().out
    assert "1 chunk-boundary dependent" in out and "runs recorded to" in out
    assert store.exists()


def test_eval_usage_errors(tmp_path, capsys):
    data = _dataset(tmp_path)
    assert main(["eval", "--policy", "nope.module:X", "--dataset", str(data)]) == 2
    assert "cannot be imported" in capsys.readouterr().err
    assert main(["eval", "--policy", "luthien_lab.policies:NoOpPolicy", "--update-golden"]) == 2
