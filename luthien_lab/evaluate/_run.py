"""``evaluate``: run policies over a dataset and tabulate what each one did."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from luthien_lab._sync import run_sync
from luthien_lab.evaluate._cases import DEFAULT_MODEL, Case, iter_cases
from luthien_lab.evaluate._output import Summary, summary_of_response
from luthien_lab.evaluate._replay import PACINGS, SharedChunks, raw_summary, run_case
from luthien_lab.evaluate._report import EvalResult
from luthien_lab.evaluate._rows import Reference, Rows, outcome_row
from luthien_lab.policies.base import Policy

if TYPE_CHECKING:
    from luthien_lab.clients import LLMClient
    from luthien_lab.events import PipelineListener

__all__ = ["evaluate", "evaluate_async", "name_policies"]


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
    if baseline in ("passthrough", "noop", "auto"):
        from luthien_lab.policies.passthrough import NoOpPolicy

        return "passthrough", NoOpPolicy()
    raise ValueError(f"baseline must be 'auto', 'passthrough', a Policy or None, not {baseline!r}")


class _Progress:
    """tqdm (notebook-aware via tqdm.auto) when installed, else a line on stderr.
    ``total`` None: unknown (a generator of cases)."""

    def __init__(self, total: int | None, enabled: bool, desc: str = "evaluate"):
        self.bar: Any = None
        self.total = total
        self.done = 0
        self.enabled = enabled and total != 0
        if not self.enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self.step = max(1, (total or 1000) // 10)
        else:
            self.bar = tqdm(total=total, desc=desc, unit="case", leave=False)

    def update(self) -> None:
        self.done += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
        elif self.done % self.step == 0 or self.done == self.total:
            of = f"/{self.total}" if self.total else ""
            print(f"evaluate: {self.done}{of} cases", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _register_sample(case: Case) -> None:
    """Teach the local provider a prompt case's scripted answer (default client only)."""
    from luthien_lab.provider import shared_local_provider, target_is_local

    if target_is_local(case.request["model"]):
        shared_local_provider().add_case(case.sample.prompt, case.sample.response)


def _total(dataset: Any) -> int | None:
    """How many cases, when that is cheap to know (``len()``), else None."""
    try:
        return len(dataset)
    except TypeError:
        return None


class _Runner:
    """Runs every policy (after the baseline, when it applies) over one case at a
    time; ``concurrency`` workers pull cases from one shared iterator, so cases are
    read as they are needed (a store streams them in batches)."""

    def __init__(
        self,
        named: dict[str, Policy],
        baseline: Any,
        client: LLMClient | None,
        options: dict[str, Any],
        listeners: list[PipelineListener],
        run_id: str,
    ) -> None:
        self.named = named
        self.auto = baseline == "auto"
        self.base_name, self.base_policy = _baseline_policy(baseline)
        self.client = client
        self.own_client = client is None
        self.options = options
        self.listeners = listeners
        self.run_id = run_id
        self.rows = Rows()
        self.base_rows = Rows()

    def baseline_for(self, case: Case) -> Policy | None:
        # A stored case's reference is what production sent: no baseline run is
        # needed, unless the caller named one (for latency deltas).
        if self.auto and case.production is not None:
            return None
        return self.base_policy

    async def run(
        self,
        policy: Policy,
        case: Case,
        shared: SharedChunks | None,
        tags: dict[str, Any],
        listeners: list[PipelineListener] | None = None,
        raw: Summary | None = None,
        last: bool = False,
    ) -> Any:
        if not case.recorded and self.client is None:
            from luthien_lab.clients import LiteLLMClient

            self.client = LiteLLMClient()
        if case.sample is not None and self.own_client:
            _register_sample(case)
        return await run_case(
            policy,
            case,
            self.client,
            pacing=self.options["pacing"],
            listeners=self.listeners if listeners is None else listeners,
            tags={"eval_run": self.run_id, "case": case.id, **tags},
            chunk_timeout=self.options["chunk_timeout"],
            chunks=shared.for_run(policy, last and not self.listeners)
            if shared is not None
            else None,
            raw=raw,
        )

    async def one(self, position: int, case: Case) -> None:
        shared = SharedChunks(case) if case.chunks is not None else None
        reference = Reference(case, raw_summary(case))
        base_policy = self.baseline_for(case)
        base_run = None
        if base_policy is not None:
            base_run = await self.run(
                base_policy,
                case,
                shared,
                {"policy": self.base_name, "baseline": True},
                raw=reference.raw,
            )
            if reference.raw is None:
                reference.raw = summary_of_response(base_run.original)
            self.base_rows.add(
                position, 0, outcome_row(case, str(self.base_name), base_run, reference)
            )
        final = len(self.named) - 1
        for rank, (name, policy) in enumerate(self.named.items()):
            run = await self.run(
                policy, case, shared, {"policy": name}, raw=reference.raw, last=rank == final
            )
            self.rows.add(position, rank, outcome_row(case, name, run, reference, base_run))


async def evaluate_async(
    policies: Any,
    dataset: Any,
    *,
    client: LLMClient | None = None,
    pacing: str = "fast",
    concurrency: int = 8,
    progress: bool = True,
    store: Any = None,
    baseline: Any = "auto",
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
    _baseline_policy(baseline)  # a bad baseline fails before any case is read
    total = _total(dataset)
    cases = iter_cases(dataset, model=model)
    run_id = uuid.uuid4().hex[:12]
    recorder = None
    extra = list(listeners)
    if store is not None:
        from luthien_lab.store import recorder_for

        recorder = recorder_for(store)
        extra.insert(0, recorder)
    options = {"pacing": pacing, "chunk_timeout": chunk_timeout}
    runner = _Runner(named, baseline, client, options, extra, run_id)
    bar = _Progress(total, progress)
    count = 0

    async def worker() -> None:
        nonlocal count
        for case in cases:  # one shared iterator: next() never interleaves
            position, count = count, count + 1
            await runner.one(position, case)
            bar.update()

    try:
        first = next(cases, None)
        if first is not None:
            warm = runner.baseline_for(first)
            if warm is not None:
                # Warm-up, discarded: the first run pays for imports and caches, which
                # would otherwise show up as latency the policies "saved".
                await runner.run(warm, first, None, {}, listeners=[])
            count = 1
            await runner.one(0, first)
            bar.update()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        bar.close()
        if recorder is not None:
            await asyncio.to_thread(recorder.close)
    df = runner.rows.frame()
    base_df = runner.base_rows.frame() if len(runner.base_rows) else None
    store_path = None
    if recorder is not None:
        store_path = str(getattr(recorder.store, "path", store))
    return EvalResult(
        df=df,
        policies=list(named),
        baseline=runner.base_name if base_df is not None else None,
        baseline_df=base_df,
        store=store_path,
        run_id=run_id,
        meta={"pacing": pacing, "concurrency": concurrency, "cases": count},
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
    baseline: Any = "auto",
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
    - ``dataset`` may also be ``store.cases(...)`` (recorded transactions, read in
      batches as they are needed, see ``Store.cases``): each candidate output is
      compared with what production sent the client (text, tool calls, finish
      reason, blocked); ``diff`` says how it differs. Any iterable streams the same
      way; ``len()``, when it has one, sizes the progress bar.
    - ``store``: a path or ``Store``: every run (baseline included) is recorded,
      tagged with ``eval_run``, ``case`` and ``policy``.
    - ``baseline``: ``"auto"`` (default: a passthrough run for latency deltas and as
      the provider reference, except for stored cases, whose reference is
      production), ``"passthrough"`` (for every case, stored ones included),
      another Policy, or None (no latency deltas; prompt cases then compare with
      each run's own provider answer).

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
