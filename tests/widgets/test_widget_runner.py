"""The prompt runner's state after runs against ScriptedLLMClient (no browser)."""

from __future__ import annotations

import asyncio

import pytest

from luthien_lab import NoOpPolicy, Policy, ScriptedLLMClient, UppercasePolicy
from luthien_lab.widgets import PromptRunner, ResponseDiff, discover_policies
from tests.widgets.helpers import mixed_stream, text_stream


class FrozenClock:
    now = 50.0

    def __call__(self):
        return self.now


class ExplodingPolicy(Policy):
    async def on_content_delta(self, ctx):
        raise ValueError("policy bug on purpose")


def echo_client(delay=0.0):
    return ScriptedLLMClient(
        script=lambda request: text_stream(*[w + " " for w in request.last_user_message.split()]),
        delay=delay,
    )


@pytest.mark.timeout(20)
async def test_run_fills_both_panes_counters_timeline_and_diff():
    runner = PromptRunner(client=ScriptedLLMClient(mixed_stream()), store=None, namespace={})
    runner.prompt.value = "hi"
    result = await runner.run_async()
    assert result.status == "ok"
    panel = runner.panels.children[0]
    assert "Hello there friend" in panel.raw.value
    assert "HELLO THERE FRIEND" in panel.transformed.value
    assert "[tool lookup]" in panel.transformed.value and "Paris" in panel.transformed.value
    n_in, n_out = len(result.trace_data.ingress), len(result.trace_data.egress)
    assert n_in == len(mixed_stream()) and n_out > 0
    assert f"chunks in {n_in} · out {n_out}" in panel.counters.value
    assert "first chunk" in panel.counters.value and "ok" in panel.counters.value
    assert "elapsed –" not in panel.counters.value
    assert len(panel.timeline.drawing.marks) == len(result.trace_data.hooks) > 0
    (diff,) = panel.diff_box.children
    assert isinstance(diff, ResponseDiff) and "<ins" in diff.value
    assert panel.error.value == ""
    assert "runs=1" in repr(runner) and len(repr(runner)) < 200


@pytest.mark.timeout(20)
async def test_live_updates_are_batched_through_the_throttle():
    chunks = text_stream(*[f"w{i} " for i in range(200)])
    clock = FrozenClock()  # time stands still: only the first redraw and the final one
    scheduled = []
    runner = PromptRunner(
        client=ScriptedLLMClient(chunks),
        store=None,
        namespace={},
        clock=clock,
        call_later=lambda delay, fn: (
            scheduled.append(fn) or asyncio.get_running_loop().call_later(3600, fn)
        ),
        policy="NoOpPolicy",
    )
    result = await runner.run_async("go")
    panel = runner.panels.children[0]
    assert panel.throttle.pokes > 400  # every chunk in, hook and chunk out poked it
    assert panel.throttle.redraws == 2
    assert len(scheduled) == 1  # one trailing redraw was scheduled, then flushed
    assert "w199" in panel.transformed.value
    assert f"chunks in {len(result.trace_data.ingress)}" in panel.counters.value


@pytest.mark.timeout(20)
async def test_policy_error_is_shown_and_recorded(store):
    runner = PromptRunner(
        client=ScriptedLLMClient(text_stream("a", "b")),
        store=store,
        namespace={"ExplodingPolicy": ExplodingPolicy},
    )
    result = await runner.run_async("x", policy="ExplodingPolicy")
    assert result.status == "error"
    panel = runner.panels.children[0]
    assert "the policy raised" in panel.error.value
    assert "policy bug on purpose" in panel.error.value
    assert "error" in panel.counters.value
    recorded = store.transactions()
    assert recorded.loc[0, "transaction_id"] == result.transaction_id
    assert recorded.loc[0, "status"] == "error"


@pytest.mark.timeout(20)
async def test_provider_error_is_shown():
    client = ScriptedLLMClient(
        text_stream("a", "b", "c"), fail_after=2, error=RuntimeError("provider exploded")
    )
    runner = PromptRunner(client=client, store=None, namespace={})
    result = await runner.run_async("x")
    panel = runner.panels.children[0]
    assert result.status == "error" and isinstance(result.exception, Exception)
    assert "the provider failed" in panel.error.value and "provider exploded" in panel.error.value
    assert "chunks in 2" in panel.counters.value


@pytest.mark.timeout(20)
async def test_bad_tools_json_is_reported_without_running():
    client = ScriptedLLMClient(text_stream("a"))
    runner = PromptRunner(client=client, store=None, namespace={})
    runner.tools.value = "[{not json"
    assert await runner.run_async("x") is None
    assert "tools is not valid JSON" in runner.panels.children[0].error.value
    assert client.requests == []


@pytest.mark.timeout(20)
async def test_concurrent_runs_never_mix():
    runner = PromptRunner(
        client=echo_client(delay=0.005), store=None, namespace={}, policy="NoOpPolicy"
    )
    first, second = await asyncio.gather(
        runner.run_async("alpha alpha alpha alpha"), runner.run_async("beta beta beta")
    )
    assert first.text.split() == ["alpha"] * 4
    assert second.text.split() == ["beta"] * 3
    by_title = {p.header.value: p for p in runner.panels.children}
    alpha = next(p for t, p in by_title.items() if "run 1" in t)
    beta = next(p for t, p in by_title.items() if "run 2" in t)
    assert "alpha" in alpha.raw.value and "beta" not in alpha.raw.value
    assert "beta" in beta.transformed.value and "alpha" not in beta.transformed.value
    assert first.transaction_id != second.transaction_id
    assert len(first.trace_data.ingress) == 6 and len(second.trace_data.ingress) == 5


@pytest.mark.timeout(20)
async def test_stop_cancels_the_run_upstream_and_records_it(store):
    client = ScriptedLLMClient(text_stream("a ", "b ", "c ", "d "), stall_after=3)
    runner = PromptRunner(client=client, store=store, namespace={}, policy="NoOpPolicy")
    task = runner.start()
    for _ in range(500):
        await asyncio.sleep(0.01)
        if runner.active and len(runner.panels.children) and client.open_streams:
            panel = runner.panels.children[0]
            if panel.trace is not None and len(panel.trace.ingress) == 3:
                break
    assert not runner.stop_button.disabled
    runner.stop()
    result = await asyncio.wait_for(task, 5)
    assert result.status == "cancelled"
    assert client.open_streams == 0  # the provider stream was closed
    assert "cancelled" in runner.panels.children[0].counters.value
    assert runner.stop_button.disabled and not runner.active
    assert store.transactions().loc[0, "status"] == "cancelled"


def test_policies_defined_in_the_notebook_are_offered():
    class MyPolicy(UppercasePolicy):
        pass

    mine = MyPolicy()
    ns = {
        "MyPolicy": MyPolicy,
        "mine": mine,
        "NoOpPolicy": NoOpPolicy,
        "x": 3,
        "Policy": Policy,
        "_hidden": MyPolicy,
    }
    found = discover_policies(ns)
    assert list(found) == ["NoOpPolicy", "UppercasePolicy", "MyPolicy", "mine"]
    runner = PromptRunner(client=echo_client(), store=None, namespace=ns)
    assert runner.policy.options == ("NoOpPolicy", "UppercasePolicy", "MyPolicy", "mine")
    ns["Later"] = type("Later", (NoOpPolicy,), {})
    runner.refresh_policies()
    assert "Later" in runner.policy.options


@pytest.mark.timeout(20)
async def test_runner_uses_a_notebook_policy_instance():
    class Suffix(NoOpPolicy):
        async def on_content_complete(self, ctx):
            from luthien_lab.streaming.helpers import send_text

            await send_text(ctx, "!!")

    ns = {"suffix": Suffix()}
    runner = PromptRunner(client=echo_client(), store=None, namespace=ns)
    result = await runner.run_async("one two", policy="suffix")
    assert result.text.endswith("!!")
    assert result.trace_data.policy.endswith("Suffix")
