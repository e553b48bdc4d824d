"""SerialPolicy: each stage's egress is the next stage's ingress, chunk by chunk."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from luthien_lab import (
    CallbackListener,
    NoOpPolicy,
    PolicyError,
    PolicyOrchestrator,
    Request,
    RequestRefused,
    ScriptedLLMClient,
    SerialPolicy,
    SimplePolicy,
    UppercasePolicy,
)
from luthien_lab.clients import LLMClient
from luthien_lab.datasets import load_recordings
from luthien_lab.errors import ConfigError
from luthien_lab.evaluate import check_chunk_invariance
from luthien_lab.policies import RewriteRulesPolicy, ShellRulesPolicy, StringReplacePolicy
from luthien_lab.policies.serial import split_stage_hook
from tests.evaluate.helpers import NaiveToolGuard, tool_recording
from tests.policies.agent_support import calls_stream, run_both
from tests.support import REQUEST, run_stream, stream_summary, text_stream


class Mark(SimplePolicy):
    """Appends its name to the request and to the response text."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def on_request_simple(self, request: Request) -> Request:
        messages = [*request.messages, {"role": "user", "content": self.name}]
        return request.model_copy(update={"messages": messages})

    async def on_response_content(self, content: str, request: Request) -> str:
        return f"{content}<{self.name}>"


class Refuse(SimplePolicy):
    async def on_request_simple(self, request: Request) -> Request:
        raise RequestRefused("not today")


async def test_requests_pass_every_stage_in_order_and_responses_every_stage():
    client = ScriptedLLMClient(text_stream("hi"))
    chain = SerialPolicy([Mark("a"), Mark("b"), Mark("c")])
    out = stream_summary(await run_stream(PolicyOrchestrator(chain, client)))
    assert [m["content"] for m in client.requests[0].messages][1:] == ["a", "b", "c"]
    assert out["text"] == "hi<a><b><c>"
    full = await PolicyOrchestrator(chain, client).process_full_response(REQUEST)
    assert full.choices[0].message.content == "hi<a><b><c>"


async def test_a_refusal_at_any_stage_ends_the_chain():
    client = ScriptedLLMClient(text_stream("hi"))
    reached: list[str] = []

    class Spy(Mark):
        async def on_request_simple(self, request: Request) -> Request:
            reached.append(self.name)
            return request

    chain = SerialPolicy([Spy("a"), Refuse(), Spy("c")])
    statuses: list[str] = []
    listener = CallbackListener(
        lambda e, _t, p: (
            statuses.append(p["result"].status) if e == "transaction_finished" else None
        )
    )
    orchestrator = PolicyOrchestrator(chain, client, listeners=[listener])
    out = stream_summary(await run_stream(orchestrator))
    assert out == {"text": "not today", "tool_calls": [], "finish_reason": "stop"}
    full = await orchestrator.process_full_response(REQUEST)
    assert full.choices[0].message.content == "not today"
    assert reached == ["a", "a"] and client.requests == [] and statuses == ["blocked", "blocked"]


async def test_stages_have_their_own_scratchpads():
    """Two SimplePolicy-based stages (same state keys) and two replacers, text split
    across chunks: with a shared scratchpad they would trip over each other."""
    chain = SerialPolicy(
        [
            StringReplacePolicy(replacements={"OpenAI": "Acme"}),
            StringReplacePolicy(replacements={"Acme": "[vendor]"}),
            UppercasePolicy(),
            Mark("z"),
        ]
    )
    chunks = text_stream("I like Op", "enA", "I and Ac", "me.")
    out = await run_both(chain, chunks)
    assert out["text"] == "I LIKE [VENDOR] AND [VENDOR].<z>"


class Gate(LLMClient):
    """Sends chunk k only once the consumer holds ``needed[k]`` egress chunks: a chain
    that waited for the end of the stream would never get past the first chunk."""

    def __init__(self, chunks: list[Any], received: list[Any], needed: list[int]) -> None:
        self.chunks, self.received, self.needed = chunks, received, needed
        self.seen: list[int] = []

    def provider_for(self, request: Request) -> str:
        return "gate"

    async def stream(self, request: Request) -> Any:
        for chunk, need in zip(self.chunks, self.needed, strict=True):
            for _ in range(50):  # let the consumer run; no clock involved
                if len(self.received) >= need:
                    break
                await asyncio.sleep(0)
            self.seen.append(len(self.received))
            yield chunk

    async def complete(self, request: Request) -> Any:  # pragma: no cover - not used
        raise NotImplementedError


@pytest.mark.parametrize(
    ("stages", "expected"),
    [
        # passthrough stages: every chunk is out before the next one is read
        ([NoOpPolicy(), NoOpPolicy(), NoOpPolicy()], [0, 1, 2, 3, 4, 5]),
        # text streams through the agent rules; the tool call waits until complete
        ([ShellRulesPolicy(), NoOpPolicy()], [0, 1, 2, 3, 3, 3]),
        # a stage that holds the text block delays it, and only it
        ([NoOpPolicy(), UppercasePolicy()], [0, 1, 1, 1, 2, 2]),
    ],
)
async def test_chunks_flow_through_the_stages_as_they_arrive(stages, expected):
    chunks = [
        *text_stream("one ", "two ", role_chunk=True)[:-1],
        *calls_stream(("Bash", {"command": "ls"}), split=100)[1:-1],
        text_stream(finish="tool_calls", role_chunk=False)[-1],
    ]
    received: list[Any] = []
    gate = Gate(chunks, received, expected)
    orchestrator = PolicyOrchestrator(SerialPolicy(stages), gate)
    async for chunk in orchestrator.process_streaming_response(REQUEST):
        received.append(chunk)
    assert gate.seen == expected


async def test_a_block_feeds_the_next_stage_and_marks_the_transaction():
    chain = SerialPolicy(
        [ShellRulesPolicy(), StringReplacePolicy(replacements={"luthien": "gate"})]
    )
    chunks = calls_stream(
        ("Bash", {"command": "ls"}), ("Bash", {"command": "rm -rf /"}), text="ok. "
    )
    out = await run_both(chain, chunks)
    assert out["tool_calls"] == [("Bash", '{"command": "ls"}')]
    assert out["text"].startswith("ok. \n[gate blocked the Bash call")  # rewritten by stage 1
    assert out["statuses"] == ["blocked", "blocked"]
    blocked = [d for n, d in out["events"] if n == "blocked"]
    assert blocked and {d["stage"] for d in blocked} == {0}
    assert {d["stage_name"] for d in blocked} == {"ShellRulesPolicy"}


async def test_hooks_and_stage_egress_are_reported_per_stage():
    hooks: list[tuple[str, int]] = []
    events: list[tuple[str, dict]] = []

    def listen(event: str, _tx: str, payload: dict) -> None:
        if event == "hook_fired":
            hooks.append((payload["hook"], payload["chunk_index"]))
        elif event == "event_emitted":
            events.append((payload["name"], payload["data"]))

    chain = SerialPolicy({"upper": UppercasePolicy(), "shell": ShellRulesPolicy()})
    chunks = calls_stream(("Bash", {"command": "rm -rf /"}), text="hello")
    await run_stream(
        PolicyOrchestrator(chain, ScriptedLLMClient(chunks), listeners=[CallbackListener(listen)])
    )
    staged = {split_stage_hook(h) for h, _ in hooks} - {None}
    assert ("0:upper", "on_content_complete") in staged
    assert ("1:shell", "on_tool_call_complete") in staged
    assert ("on_stream_complete", len(chunks)) in hooks
    assert all(i <= len(chunks) for _, i in hooks)
    egress = [d for n, d in events if n == "stage_egress"]
    assert [d["stage_name"] for d in egress] == ["upper", "shell"]
    assert egress[0]["text"] == "HELLO" and egress[0]["tool_calls"][0]["name"] == "Bash"
    assert egress[1]["final"] is True
    rule = next(d for n, d in events if n == "agent_rule")
    assert rule["stage_path"] == "1:shell" and 0 < rule["chunk_index"] < len(chunks)


async def test_stage_outputs_expose_each_stages_egress():
    contexts: list[Any] = []

    class Outer(SerialPolicy):
        async def on_stream_complete(self, ctx: Any) -> None:
            await super().on_stream_complete(ctx)
            contexts.append(ctx)

    chain2 = Outer([UppercasePolicy(), NoOpPolicy()], names=["up", "same"])
    await run_stream(PolicyOrchestrator(chain2, ScriptedLLMClient(text_stream("a", "b"))))
    up, same = chain2.stage_outputs(contexts[0])
    assert (up.name, same.name) == ("up", "same")
    assert stream_summary(up.chunks)["text"] == "AB" == stream_summary(same.chunks)["text"]


async def test_a_failing_stage_is_named():
    class Broken(SimplePolicy):
        async def on_response_content(self, content: str, request: Request) -> str:
            raise ValueError("boom")

    chain = SerialPolicy([NoOpPolicy(), Broken()])
    with pytest.raises(PolicyError, match=r"1:Broken/on_content_complete"):
        await run_stream(PolicyOrchestrator(chain, ScriptedLLMClient(text_stream("x"))))


def test_construction_errors_and_names():
    with pytest.raises(ConfigError, match="at least one"):
        SerialPolicy([])
    with pytest.raises(ConfigError, match="not a luthien_lab Policy"):
        SerialPolicy([object()])
    with pytest.raises(ConfigError, match="'/'"):
        SerialPolicy({"a/b": NoOpPolicy()})
    chain = SerialPolicy([NoOpPolicy(), NoOpPolicy(), UppercasePolicy()])
    assert chain.names == ["NoOpPolicy", "NoOpPolicy#2", "UppercasePolicy"]
    assert chain.config["stages"][2]["class"].endswith("UppercasePolicy")
    again = SerialPolicy(chain.config["stages"])  # the recorded config rebuilds the chain
    assert again.names == chain.names and isinstance(again.stages[2], UppercasePolicy)


_CHAIN_INVARIANT = {
    "replace+upper": lambda: SerialPolicy(
        [StringReplacePolicy(replacements={"OpenAI": "[v]"}), UppercasePolicy()]
    ),
    "agent chain": lambda: SerialPolicy(
        [
            ShellRulesPolicy(),
            RewriteRulesPolicy(
                rules=[{"name": "uv", "command": "pip", "replace_with": ["uv", "pip"]}]
            ),
            StringReplacePolicy(replacements={"San Francisco": "SF"}),
        ]
    ),
}


@pytest.mark.parametrize("name", sorted(_CHAIN_INVARIANT))
def test_a_chain_of_chunk_invariant_policies_is_chunk_invariant(name):
    recordings = load_recordings()[:12]
    extra = [
        tool_recording("rm", "Bash", '{"command": "ls && rm', ' -rf /"}'),
        tool_recording("pip", "Bash", '{"command": "pip ins', 'tall x"}'),
    ]
    report = check_chunk_invariance(
        _CHAIN_INVARIANT[name](), [*recordings, *extra], max_examples=15
    )
    assert report.ok, str(report)
    assert report.cases_checked == len(recordings) + 2


def test_a_chain_holding_a_chunk_dependent_stage_is_caught():
    chain = SerialPolicy([NoOpPolicy(), NaiveToolGuard()])
    report = check_chunk_invariance(
        chain, [tool_recording("rm", "Bash", '{"command": "rm -', 'rf /"}')], max_examples=10
    )
    assert not report.ok and report.failed_cases == ["rm"]
