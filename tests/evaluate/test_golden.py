"""Golden outputs: stable file, regressions named, pytest helper fails on a change."""

from __future__ import annotations

import json

import pytest

from luthien_lab import UppercasePolicy
from luthien_lab.errors import DatasetError
from luthien_lab.evaluate import (
    assert_matches_golden,
    compare_golden,
    evaluate,
    load_golden,
    save_golden,
)

from .helpers import DropTool, ReplaceWhole, text_recording, tool_recording

DATASET = [
    text_recording("b-text", "Hi Open", "AI 日本"),
    tool_recording("a-tool", "get_weather", '{"city":', '"Paris"}'),
]


@pytest.mark.timeout(60)
def test_save_is_stable_sorted_jsonl(tmp_path):
    result = evaluate({"z": ReplaceWhole(), "a": UppercasePolicy()}, DATASET, progress=False)
    first = save_golden(result, tmp_path / "g1.jsonl").read_text(encoding="utf-8")
    again = evaluate({"a": UppercasePolicy(), "z": ReplaceWhole()}, DATASET[::-1], progress=False)
    second = save_golden(again, tmp_path / "g2.jsonl").read_text(encoding="utf-8")
    assert first == second  # order of policies and cases does not matter
    records = [json.loads(line) for line in first.splitlines()]
    assert [(r["policy"], r["case"]) for r in records] == [
        ("a", "a-tool"),
        ("a", "b-text"),
        ("z", "a-tool"),
        ("z", "b-text"),
    ]
    assert "日本" in first  # readable UTF-8, not \\u escapes
    assert records[0]["tool_calls"] == [{"name": "get_weather", "arguments": '{"city":"Paris"}'}]
    assert records[3]["text"] == "Hi [REDACTED] 日本"
    assert set(records[0]) == {
        "case",
        "policy",
        "text",
        "tool_calls",
        "finish_reason",
        "blocked",
        "refused",
        "error",
    }
    assert load_golden(tmp_path / "g1.jsonl") == records


@pytest.mark.timeout(60)
def test_compare_names_each_regression(tmp_path):
    path = tmp_path / "golden.jsonl"
    save_golden(evaluate({"p": ReplaceWhole()}, DATASET, progress=False), path)
    assert compare_golden(evaluate({"p": ReplaceWhole()}, DATASET, progress=False), path) == []
    changed = evaluate({"p": ReplaceWhole(replacement="***")}, DATASET, progress=False)
    (regression,) = compare_golden(changed, path)
    assert (regression.case, regression.policy, regression.field) == ("b-text", "p", "text")
    assert regression.expected == "Hi [REDACTED] 日本" and regression.actual == "Hi *** 日本"
    dropped = evaluate({"p": DropTool()}, DATASET, progress=False)
    fields = {(r.case, r.field) for r in compare_golden(dropped, path)}
    assert {
        ("a-tool", "tool_calls"),
        ("a-tool", "blocked"),
        ("a-tool", "finish_reason"),
        ("b-text", "text"),
    } == fields
    fewer = evaluate({"p": ReplaceWhole()}, DATASET[:1], progress=False)
    assert [(r.case, r.field) for r in compare_golden(fewer, path)] == [("a-tool", "missing")]
    with pytest.raises(DatasetError, match="no golden file"):
        compare_golden(fewer, tmp_path / "absent.jsonl")


@pytest.mark.timeout(60)
def test_assert_matches_golden(tmp_path, monkeypatch):
    monkeypatch.delenv("LUTHIEN_LAB_UPDATE_GOLDEN", raising=False)
    path = tmp_path / "replace.jsonl"
    with pytest.raises(AssertionError, match="no golden file"):
        assert_matches_golden(ReplaceWhole(), DATASET, path)
    assert_matches_golden(ReplaceWhole(), DATASET, path, update=True)
    assert_matches_golden(ReplaceWhole(), DATASET, path)  # unchanged policy passes
    with pytest.raises(AssertionError, match=r"(?s)1 output\(s\) differ.*b-text: text changed"):
        assert_matches_golden(ReplaceWhole(search="Hi"), DATASET, path)
    monkeypatch.setenv("LUTHIEN_LAB_UPDATE_GOLDEN", "1")
    assert_matches_golden(ReplaceWhole(search="Hi"), DATASET, path)
    monkeypatch.delenv("LUTHIEN_LAB_UPDATE_GOLDEN")
    assert_matches_golden(ReplaceWhole(search="Hi"), DATASET, path)
