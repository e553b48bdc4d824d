"""``luthien-lab eval --store PATH``: replay recorded transactions from the command line."""

from __future__ import annotations

import pytest

from luthien_lab.cli import main
from luthien_lab.evaluate import evaluate
from luthien_lab.policies.uppercase import UppercasePolicy

from .helpers import text_recording

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "prod.duckdb"
    data = [text_recording(f"c{i}", "hello ", f"there {i}") for i in range(3)]
    evaluate({"upper": UppercasePolicy()}, data, store=path, progress=False)
    return path


def test_eval_store_compares_with_production(store_path, capsys):
    argv = ["eval", "--store", str(store_path), "--since", "1d", "--tag", "policy=upper"]
    assert main([*argv, "luthien_lab.policies:NoOpPolicy"]) == 0
    out = capsys.readouterr().out
    assert "NoOpPolicy" in out and "change_rate" in out
    assert "3 recorded transaction(s) replayed" in out
    assert "NoOpPolicy: 3 of 3 differ from production" in out
    assert "-HELLO THERE 0" in out and "+hello there 0" in out
    assert main([*argv, "luthien_lab.policies.uppercase:UppercasePolicy"]) == 0
    assert "UppercasePolicy: 0 of 3 differ" in capsys.readouterr().out


def test_eval_store_filters_and_several_policies(store_path, capsys):
    argv = [
        "eval",
        "--store",
        str(store_path),
        "--limit",
        "2",
        "--status",
        "ok",
        "--api",
        "chat",
        "--model",
        "test-model",
        "--policy-class",
        "UppercasePolicy",
        "--where",
        "t.streaming",
        "luthien_lab.policies:NoOpPolicy",
        "luthien_lab.policies.uppercase:UppercasePolicy",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "2 recorded transaction(s) replayed" in out
    assert "NoOpPolicy: 2 of 2 differ" in out and "UppercasePolicy: 0 of 2 differ" in out


def test_eval_store_usage_errors(store_path, tmp_path, capsys):
    noop = "luthien_lab.policies:NoOpPolicy"
    assert main(["eval", "--store", str(store_path), "--since", "7x", noop]) == 2
    assert "since='7x'" in capsys.readouterr().err
    assert main(["eval", "--store", str(tmp_path / "none.duckdb"), noop]) == 2
    assert "no such store file" in capsys.readouterr().err
    assert main(["eval", "--store", str(store_path)]) == 2
    assert "name a policy" in capsys.readouterr().err
    assert main(["eval", "--since", "7d", noop]) == 2
    assert "--since filters stored cases" in capsys.readouterr().err
