"""``evaluate``: run policies over a dataset and tabulate what each one did."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from luthien_lab._sync import run_sync
from luthien_lab.evaluate._cases import DEFAULT_MODEL, Case, output_of, to_cases
from luthien_lab.evaluate._replay import PACINGS, RunOutcome, raw_response, run_case
from luthien_lab.evaluate._report import COLUMNS, EvalResult
from luthien_lab.policies.base import Policy

if TYPE_CHECKING:
    from luthien_lab.clients import LLMClient
    from luthien_lab.events import PipelineListener

__all__ = ["evaluate", "evaluate_async", "name_policies", "outcome_row"]


def name_policies(policies: Any) -> dict[str, Policy]:
    """``{name: policy}`` from a Policy, a list (class names, de-duplicated) or a dict."""
    if isinstance(policies, Policy):
        policies = [policies]
    if isinstance(policies, Mapping):
        named = {str(k): v for k, v in policies.items()}
    elif isinstance(policies, Sequence) and not isinstance(policies, str):
        named = {}
        for policy in policies:
            base = type(policy).__name__
            name, n = base, 2
            while name in named:
                name, n = f"{base}#{n}", n + 1
            named[name] = policy
    else:
        raise TypeError(
            f"policies must be a Policy, a list of policies or a dict name -> policy, "
            f"got {type(policies).__name__}"
        )
    if not named:
        raise ValueError("policies is empty; pass at least one Policy")
    for name, policy in named.items():
        if not isinstance(policy, Policy):
            raise TypeError(
                f"policy {name!r} is a {type(policy).__name__}, not a luthien_lab.Policy instance"
            )
    return named


def _baseline_policy(baseline: Any) -> tuple[str | None, Policy | None]:
    if baseline is None:
        return None, None
    if isinstance(baseline, Policy):
        return type(baseline).__name__, baseline
    if baseline in ("passthrough", "noop"):
        from luthien_lab.policies.passthrough import NoOpPolicy

        return "passthrough", NoOpPolicy()
    raise ValueError(f"baseline must be 'passthrough', a Policy or None, not {baseline!r}")


def _ms(ns: int | None) -> float:
    return float("nan") if ns is None else ns / 1e6


def outcome_row(case: Case, name: str, run: RunOutcome, raw: Any) -> dict[str, Any]:
    """One table row; ``raw`` is the provider's response for the case (recorded or
    from a baseline run) used when the run itself never reached the provider."""
    original = run.original if run.original is not None else raw
    final_out = output_of(run.final)
    raw_out = output_of(original)
    return {
        "case": case.id,
        "policy": name,
        "status": run.status,
        "changed": (final_out.text, final_out.tool_calls) != (raw_out.text, raw_out.tool_calls),
        "blocked": run.status == "blocked" or len(final_out.tool_calls) < len(raw_out.tool_calls),
        "refused": run.refused,
        "text": final_out.text,
        "tool_calls": run.tool_calls_json(),
        "finish_reason": final_out.finish_reason,
        "ttfc_ms": _ms(run.ttfc_ns),
        "total_ms": _ms(run.total_ns),
        "added_ttfc_ms": float("nan"),
        "added_total_ms": float("nan"),
        "chunks_in": run.chunks_in,
        "chunks_out": run.chunks_out,
        "error": run.error_text,
        "transaction_id": run.transaction_id,
    }


class _Progress:
    """tqdm (notebook-aware via tqdm.auto) when installed, else a line on stderr."""

    def __init__(self, total: int, enabled: bool, desc: str = "evaluate"):
        self.bar: Any = None
        self.total = total
        self.done = 0
        self.enabled = enabled and total > 0
        if not self.enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self.step = max(1, total // 10)
        else:
            self.bar = tqdm(total=total, desc=desc, unit="case", leave=False)

    def update(self) -> None:
        self.done += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
        elif self.done % self.step == 0 or self.done == self.total:
            print(f"evaluate: {self.done}/{self.total} cases", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _register_samples(cases: list[Case], client: LLMClient | None) -> None:
    """Teach the local provider the scripted answers of prompt cases (default client only)."""
    samples = [c.sample for c in cases if c.sample is not None]
    if client is not None or not samples:
        return
    from luthien_lab.provider import shared_local_provider, target_is_local

    if not any(target_is_local(c.request["model"]) for c in cases if c.sample is not None):
        return
    provider = shared_local_provider()
    for sample in samples:
        provider.add_case(sample.prompt, sample.response)


async def evaluate_async(
    policies: Any,
    dataset: Any,
    *,
    client: LLMClient | None = None,
    pacing: str = "fast",
    concurrency: int = 8,
    progress: bool = True,
    store: Any = None,
    baseline: Any = "passthrough",
    model: str = DEFAULT_MODEL,
    chunk_timeout: float | None = 60.0,
    listeners: Sequence[PipelineListener] = (),
) -> EvalResult:
    """Run every policy over every case; see :func:`evaluate`."""
    if pacing not in PACINGS:
        raise ValueError(f"pacing must be 'fast' or 'original', not {pacing!r}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    named = name_policies(policies)
    base_name, base_policy = _baseline_policy(baseline)
    cases = to_cases(dataset, model=model)
    if client is None and any(not c.recorded for c in cases):
        from luthien_lab.clients import LiteLLMClient

        _register_samples(cases, None)
        client = LiteLLMClient()
    run_id = uuid.uuid4().hex[:12]
    recorder = None
    extra = list(listeners)
    if store is not None:
        from luthien_lab.store import recorder_for

        recorder = recorder_for(store)
        extra.insert(0, recorder)
    rows: dict[str, list[dict[str, Any]]] = {}
    base_rows: dict[str, dict[str, Any]] = {}
    semaphore = asyncio.Semaphore(concurrency)
    bar = _Progress(len(cases), progress)

    async def one(case: Case) -> None:
        async with semaphore:
            tags = {"eval_run": run_id, "case": case.id}
            raw = raw_response(case)
            base_run = None
            if base_policy is not None:
                base_run = await run_case(
                    base_policy,
                    case,
                    client,
                    pacing=pacing,
                    listeners=extra,
                    tags={**tags, "policy": base_name, "baseline": True},
                    chunk_timeout=chunk_timeout,
                )
                if raw is None:
                    raw = base_run.original
                base_rows[case.id] = outcome_row(case, str(base_name), base_run, raw)
            out = []
            for name, policy in named.items():
                run = await run_case(
                    policy,
                    case,
                    client,
                    pacing=pacing,
                    listeners=extra,
                    tags={**tags, "policy": name},
                    chunk_timeout=chunk_timeout,
                )
                row = outcome_row(case, name, run, raw)
                if base_run is not None:
                    if run.ttfc_ns is not None and base_run.ttfc_ns is not None:
                        row["added_ttfc_ms"] = (run.ttfc_ns - base_run.ttfc_ns) / 1e6
                    row["added_total_ms"] = (run.total_ns - base_run.total_ns) / 1e6
                out.append(row)
            rows[case.id] = out
        bar.update()

    try:
        if base_policy is not None and cases:
            # Warm-up, discarded: the first run pays for imports and caches, which
            # would otherwise show up as latency the policies "saved".
            await run_case(base_policy, cases[0], client, chunk_timeout=chunk_timeout)
        await asyncio.gather(*(one(case) for case in cases))
    finally:
        bar.close()
        if recorder is not None:
            await asyncio.to_thread(recorder.close)
    ordered = [row for case in cases for row in rows.get(case.id, [])]
    df = pd.DataFrame(ordered, columns=COLUMNS)
    base_df = (
        pd.DataFrame([base_rows[c.id] for c in cases if c.id in base_rows], columns=COLUMNS)
        if base_rows
        else None
    )
    store_path = None
    if recorder is not None:
        store_path = str(getattr(recorder.store, "path", store))
    return EvalResult(
        df=df,
        policies=list(named),
        baseline=base_name,
        baseline_df=base_df,
        store=store_path,
        run_id=run_id,
        meta={"pacing": pacing, "concurrency": concurrency, "cases": len(cases)},
    )


def evaluate(
    policies: Any,
    dataset: Any,
    *,
    client: LLMClient | None = None,
    pacing: str = "fast",
    concurrency: int = 8,
    progress: bool = True,
    store: Any = None,
    baseline: Any = "passthrough",
    model: str = DEFAULT_MODEL,
    chunk_timeout: float | None = 60.0,
    listeners: Sequence[PipelineListener] = (),
) -> EvalResult:
    """Run ``policies`` over ``dataset`` and return an :class:`EvalResult`.

    - ``policies``: a Policy, a list (named by class) or a dict ``name -> Policy``.
    - ``dataset``: recordings (``load_recordings()``, dicts with ``chunks``, or plain
      lists of chunks) are replayed with no provider, at once (``pacing="fast"``) or
      at their recorded pace (``"original"``); prompt cases (``Dataset``, ``Sample``,
      dicts with ``prompt``/``messages``, strings) go through ``client`` (default
      :class:`~luthien_lab.LiteLLMClient`: the local provider offline, which is
      taught each sample's scripted answer). A path loads either kind.
    - ``concurrency``: cases in flight at once; each case runs the baseline, then
      every policy, one after the other (so latency deltas compare like with like).
    - ``store``: a path or ``Store``: every run (baseline included) is recorded,
      tagged with ``eval_run``, ``case`` and ``policy``.
    - ``baseline``: ``"passthrough"`` (default), another Policy, or None (no
      latency deltas; prompt cases then compare with each run's own provider answer).

    Works in plain scripts and inside Jupyter's running loop (it then runs on a
    worker thread); in async code, ``await evaluate_async(...)``.
    """
    return run_sync(
        lambda: evaluate_async(
            policies,
            dataset,
            client=client,
            pacing=pacing,
            concurrency=concurrency,
            progress=progress,
            store=store,
            baseline=baseline,
            model=model,
            chunk_timeout=chunk_timeout,
            listeners=listeners,
        )
    )
