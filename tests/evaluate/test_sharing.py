"""A case's chunk objects are built once and shared by its runs: a policy that changes
the chunks it receives must never change another policy's run, the baseline, the
recorded case or production's reference."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from luthien_lab import NoOpPolicy
from luthien_lab.evaluate import evaluate
from luthien_lab.evaluate._cases import Case, Production
from luthien_lab.policies import Policy

from .helpers import text_recording, tool_recording


class MutateInPlace(Policy):
    """Rewrites every chunk it receives in place, then forwards that same object."""

    async def on_chunk_received(self, ctx: Any) -> None:
        chunk = ctx.ingress_state.raw_chunks[-1]
        if chunk.choices:
            delta = chunk.choices[0].delta
            if delta.content:
                delta.content = "MUTATED"
            for call in delta.tool_calls or ():
                call.function.arguments = "{}"
                if call.function.name:
                    call.function.name = "hijacked"
            chunk.choices[0].finish_reason = chunk.choices[0].finish_reason and "length"
        if chunk.usage is not None:
            chunk.usage.total_tokens = -1
        ctx.egress_queue.put_nowait(chunk)


DATASET = [text_recording("text", "Hello ", "world"), tool_recording("tool", "f", '{"a":', "1}")]


@pytest.mark.parametrize("order", ["mutator-first", "mutator-last"])
def test_one_policys_mutation_never_leaks(order):
    cases = [Case(**{k: v for k, v in d.items() if k != "id"}, id=d["id"]) for d in DATASET]
    pristine = copy.deepcopy([c.chunks for c in cases])
    named: dict[str, Policy] = {"mutate": MutateInPlace(), "noop": NoOpPolicy()}
    if order == "mutator-last":
        named = dict(reversed(list(named.items())))
    result = evaluate(named, cases, progress=False, concurrency=1)
    noop, mutate = result.for_policy("noop"), result.for_policy("mutate")
    assert list(noop["text"]) == ["Hello world", ""]
    assert not noop["changed"].any()
    assert (
        noop["tool_calls"].iloc[1] == '[{"id": "call_1", "name": "f", "arguments": "{\\"a\\":1}"}]'
    )
    assert list(mutate["text"]) == ["MUTATEDMUTATED", ""]
    assert "hijacked" in mutate["tool_calls"].iloc[1]
    assert mutate["changed"].all()
    base = result.baseline_df
    assert base is not None and list(base["text"]) == ["Hello world", ""]
    assert [c.chunks for c in cases] == pristine


def test_production_reference_is_untouched_by_a_mutating_candidate():
    (data,) = [d for d in DATASET if d["id"] == "text"]
    production = Production("tx-1", "ok", "Hello world", (), "stop")
    case = Case(id="tx-1", request=data["request"], chunks=data["chunks"], production=production)
    result = evaluate({"mutate": MutateInPlace(), "noop": NoOpPolicy()}, [case], progress=False)
    assert result.for_policy("noop")["changed"].tolist() == [False]
    assert result.for_policy("mutate")["changed"].tolist() == [True]
    assert case.production.text == "Hello world"
    assert case.chunks == data["chunks"]


def test_a_lone_mutating_policy_owns_the_chunks_but_not_the_references(tmp_path):
    """The last run of a case takes the original objects; its changes are its own
    output, never the baseline's, the case's or what a recorder stored."""
    cases = [Case(id=d["id"], request=d["request"], chunks=d["chunks"]) for d in DATASET]
    pristine = copy.deepcopy([c.chunks for c in cases])
    result = evaluate({"mutate": MutateInPlace()}, cases, progress=False)
    assert list(result.df["text"]) == ["MUTATEDMUTATED", ""]
    assert result.df["changed"].all()
    assert list(result.baseline_df["text"]) == ["Hello world", ""]
    assert [c.chunks for c in cases] == pristine
    from luthien_lab.store import Store

    path = tmp_path / "runs.duckdb"
    evaluate({"mutate": MutateInPlace()}, cases, progress=False, store=path)
    store = Store(path, read_only=True)
    base = store.transactions().query("tags.str.contains('baseline')")
    for tid in base["transaction_id"]:
        texts = "".join(store.chunks(tid, "ingress")["content"].dropna())
        assert "MUTATED" not in texts
