"""evaluate_on_ray gathers the same table as evaluate (skipped when Ray is absent)."""

from __future__ import annotations

import pytest

from luthien_lab import NoOpPolicy
from luthien_lab.evaluate import evaluate, evaluate_on_ray, export_parquet

from .helpers import text_recording, tool_recording

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'luthien-lab[ray]'")

DATASET = [text_recording(f"t{i}", "Open", f"AI {i}") for i in range(5)] + [
    tool_recording("tool", "get_weather", '{"city":', '"Paris"}')
]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.timeout(240)
def test_sharded_result_equals_local_result(local_ray, tmp_path):
    path = export_parquet(DATASET, tmp_path / "cases.parquet")
    spec = {
        "upper": "luthien_lab.policies.uppercase:UppercasePolicy",
        "replace": {
            "policy": {
                "class": "luthien_lab.policies.string_replace:StringReplacePolicy",
                "config": {"replacements": {"OpenAI": "[REDACTED]"}},
            }
        },
    }
    remote = evaluate_on_ray(spec, path, num_shards=3)
    assert remote.meta["ray_shards"] == 3
    from luthien_lab.evaluate._spec import load_policy_spec

    local = evaluate({k: load_policy_spec(v) for k, v in spec.items()}, DATASET, progress=False)
    columns = ["case", "policy", "status", "changed", "blocked", "text", "tool_calls"]
    assert remote.df[columns].equals(local.df[columns])
    assert remote.summary()["change_rate"].to_dict() == local.summary()["change_rate"].to_dict()
    assert remote.baseline_df is not None and len(remote.baseline_df) == len(DATASET)


@pytest.mark.timeout(240)
def test_a_store_export_evaluates_on_ray_as_locally(local_ray, tmp_path):
    from luthien_lab.policies.uppercase import UppercasePolicy
    from luthien_lab.store import Store

    store_path = tmp_path / "prod.duckdb"
    evaluate({"upper": UppercasePolicy()}, DATASET, store=store_path, progress=False)
    store = Store(store_path, read_only=True)
    path = store.export_cases(tmp_path / "store.parquet", tag="policy=upper")
    spec = {"noop": "luthien_lab.policies:NoOpPolicy"}
    remote = evaluate_on_ray(spec, path, num_shards=2)
    local = evaluate({"noop": NoOpPolicy()}, store.cases(tag="policy=upper"), progress=False)
    columns = ["case", "policy", "changed", "text", "diff", "reference"]
    assert remote.df[columns].equals(local.df[columns])
    assert set(remote.df["reference"]) == {"production"} and remote.df["changed"].any()
