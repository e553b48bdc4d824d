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
