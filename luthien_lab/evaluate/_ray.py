"""``evaluate_on_ray``: the same evaluation, sharded over a Ray cluster.

Recordings are exported to Parquet (:func:`export_parquet`: one row per case, JSON
text columns). The driver splits the rows into ``num_shards`` contiguous ranges;
each Ray task reads its range (so the file must be readable by every worker: a
shared filesystem, or ``ship_rows=True`` to send the rows from the driver), runs
:func:`evaluate_async` on one process and returns its rows. The driver
concatenates them into one :class:`EvalResult`, in the Parquet file's case order.

Ray is optional (``pip install 'luthien-lab[ray]'``) and imported only here.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from typing import Any

import pandas as pd

from luthien_lab.evaluate._cases import case_from_row, cases_to_parquet, iter_parquet_cases
from luthien_lab.evaluate._report import COLUMNS, EvalResult
from luthien_lab.evaluate._spec import load_policy_spec, portable_spec

__all__ = ["evaluate_on_ray", "export_parquet"]


def export_parquet(dataset: Any, path: str | os.PathLike[str]) -> Any:
    """Write a dataset (recordings, a recordings path, chunk lists, a store's
    ``store.cases(...)``...) as Parquet, a batch at a time."""
    return cases_to_parquet(dataset, path)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ImportError(
            "evaluate_on_ray needs Ray: pip install 'luthien-lab[ray]' (or 'ray[default]')"
        ) from None
    return ray


def _shard(
    spec: Any,
    rows: list[dict[str, Any]] | None,
    path: str,
    start: int,
    stop: int,
    options: dict[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One shard, on a worker: rows -> (result rows, baseline rows)."""
    from luthien_lab.evaluate._run import evaluate_async, name_policies

    cases: Any = (
        iter_parquet_cases(path, start, stop)
        if rows is None
        else (case_from_row(row) for row in rows)
    )
    if isinstance(spec, dict) and spec and "policy" not in spec:
        policies: Any = {name: load_policy_spec(s) for name, s in spec.items()}
    else:
        policies = load_policy_spec(spec)
    result = asyncio.run(evaluate_async(name_policies(policies), cases, progress=False, **options))
    base = result.baseline_df.to_dict("records") if result.baseline_df is not None else []
    return result.df.to_dict("records"), base


def _baseline_name(baseline: Any) -> str | None:
    if baseline is None:
        return None
    if isinstance(baseline, str):
        return "passthrough"
    return type(baseline).__name__


def evaluate_on_ray(
    policy_spec: Any,
    parquet_path: str | os.PathLike[str],
    *,
    address: str | None = None,
    num_shards: int | None = None,
    pacing: str = "fast",
    concurrency: int = 8,
    baseline: Any = "auto",
    ship_rows: bool = False,
    runtime_env: dict[str, Any] | None = None,
) -> EvalResult:
    """Evaluate ``policy_spec`` over the Parquet dataset at ``parquet_path`` on Ray.

    - ``policy_spec``: a Policy instance (cloudpickled to workers), ``"module:Class"``,
      a YAML path (read on the driver) or a dict ``name -> spec`` to compare several.
    - ``address``: ``None`` uses the running Ray instance (``ray.init()`` first) or
      starts a local one; ``"auto"`` joins the cluster this machine belongs to;
      ``"ray://head:10001"`` connects through Ray Client. Workers need luthien-lab
      installed: pass ``runtime_env={"pip": ["luthien-lab"]}`` or bake it in the image.
    - ``num_shards``: tasks to split the cases into (default: the cluster's CPU count).

    ``parquet_path`` may be a store's export (``store.export_cases(path, since="7d")``
    or ``export_parquet(store.cases(...), path)``): each case is then compared with
    what production sent, as :func:`evaluate` does. Each worker reads only the row
    groups of its range.
    """
    ray = _import_ray()
    import pyarrow.parquet as pq

    path = os.fspath(parquet_path)
    total = pq.ParquetFile(path).metadata.num_rows
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if runtime_env is not None:
            kwargs["runtime_env"] = runtime_env
        ray.init(address=address, **kwargs)
        started = True
    try:
        if num_shards is None:
            num_shards = int(ray.cluster_resources().get("CPU", 1))
        num_shards = max(1, min(num_shards, total or 1))
        if isinstance(policy_spec, dict) and "policy" not in policy_spec:
            spec: Any = {name: portable_spec(s) for name, s in policy_spec.items()}
        else:
            spec = portable_spec(policy_spec)
        options = {"pacing": pacing, "concurrency": concurrency, "baseline": baseline}
        all_rows = pq.read_table(path).to_pylist() if ship_rows else None
        remote = ray.remote(_shard)
        bounds = [round(i * total / num_shards) for i in range(num_shards + 1)]
        futures = [
            remote.remote(
                spec,
                all_rows[a:b] if all_rows is not None else None,
                path,
                a,
                b,
                options,
            )
            for a, b in itertools.pairwise(bounds)
            if b > a
        ]
        parts = ray.get(futures)
    finally:
        if started:
            ray.shutdown()
    rows = [row for part, _ in parts for row in part]
    base_rows = [row for _, part in parts for row in part]
    df = pd.DataFrame(rows, columns=COLUMNS)
    names = list(dict.fromkeys(df["policy"])) if len(df) else []
    return EvalResult(
        df=df,
        policies=names,
        baseline=_baseline_name(baseline) if base_rows else None,
        baseline_df=pd.DataFrame(base_rows, columns=COLUMNS) if base_rows else None,
        meta={"ray_shards": len(parts), "cases": total, "pacing": pacing},
    )
