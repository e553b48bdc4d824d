"""Faults the orchestrator must survive without losing or hanging anything (#20, #17):
hooks that never return or block the event loop, policies that emit things that are
not chunks, and transactions begun on any API path, which must each end exactly once.

No test bounds a duration from above: they check outcomes, statuses, counts and order
(the pytest-timeout marks only stop a hang from stalling the suite).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from luthien_lab import (
    NoOpPolicy,
    PipelineListener,
    Policy,
    PolicyError,
    PolicyOrchestrator,
    Request,
    RequestRefused,
    ScriptedLLMClient,
    SimplePolicy,
    UpstreamError,
)
from luthien_lab.errors import HookTimeoutError
from luthien_lab.streaming import helpers
from luthien_lab.streaming.chunks import create_text_chunk
from tests.support import REQUEST, run_stream, stream_summary, text_stream

BLOCKED_EVENT = "hook_blocked_event_loop"


class Ledger(PipelineListener):
    """What listeners see: every start, every end (all of them, to catch doubles),
    every event."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.finished: dict[str, list[Any]] = {}
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def transaction_started(self, info):
        self.started.append(info.transaction_id)

    def event_emitted(self, event):
        self.events.append((event.transaction_id, event.name, event.data))

    def transaction_finished(self, event):
        self.finished.setdefault(event.transaction_id, []).append(event.result)

    def statuses(self) -> list[str]:
        """The status of each transaction, in the order they started; '?' for one that
        never ended, 'status*n' for one that ended n > 1 times."""
        out = []
        for tid in self.started:
            ends = self.finished.get(tid, [])
            if not ends:
                out.append("?")
            elif len(ends) > 1:
                out.append(f"{ends[0].status}*{len(ends)}")
            else:
                out.append(ends[0].status)
        return out

    def only(self) -> Any:
        assert len(self.started) == 1 and len(self.finished[self.started[0]]) == 1
        return self.finished[self.started[0]][0]

    def blocked(self) -> list[dict[str, Any]]:
        return [data for _tid, name, data in self.events if name == BLOCKED_EVENT]


def orchestrate(policy: Policy, chunks=None, **kwargs) -> tuple[PolicyOrchestrator, Ledger]:
    ledger = Ledger()
    client = kwargs.pop("client", None) or ScriptedLLMClient(chunks or text_stream("a", "b"))
    return PolicyOrchestrator(policy, client, listeners=[ledger], **kwargs), ledger


async def drain(orchestrator, request=REQUEST, transaction_id=None) -> tuple[list, Any]:
    """(chunks received, the exception that ended the stream or None)."""
    got: list[Any] = []
    try:
        async for chunk in orchestrator.process_streaming_response(request, transaction_id):
            got.append(chunk)
    except Exception as error:
        return got, error
    return got, None


class Forward(Policy):
    """Sends each content delta on as text."""

    async def on_content_delta(self, ctx):
        await helpers.send_text(ctx, ctx.ingress_state.current_block.last_delta)


# ----- hooks that never return -----


@pytest.mark.timeout(20)
async def test_a_hook_that_never_returns_fails_the_transaction_naming_hook_and_timeout():
    cancelled = []

    class Hangs(Forward):
        async def on_content_delta(self, ctx):
            await super().on_content_delta(ctx)
            if ctx.ingress_state.current_block.content == "ab":
                try:
                    await asyncio.Event().wait()
                finally:
                    cancelled.append(True)

    client = ScriptedLLMClient(text_stream("a", "b", "c"))
    orchestrator, ledger = orchestrate(Hangs(), client=client, hook_timeout=0.2)
    before = asyncio.all_tasks()
    got, error = await drain(orchestrator, transaction_id="tx-hang")

    assert isinstance(error, HookTimeoutError) and isinstance(error, PolicyError)
    assert error.hook == "on_content_delta" and error.transaction_id == "tx-hang"
    assert error.timeout == 0.2 and isinstance(error.__cause__, TimeoutError)
    message = str(error)
    assert "Hangs.on_content_delta" in message and "0.2 s" in message
    assert "hook_timeout" in message and "tx-hang" in message
    assert stream_summary(got)["text"] == "ab", "what the hook sent before it hung arrives"
    assert cancelled == [True], "the hook itself was cancelled, not left running"
    result = ledger.only()
    assert (result.status, result.error_type) == ("error", "HookTimeoutError")
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == before
    assert client.open_streams == 0


@pytest.mark.timeout(20)
async def test_a_hook_that_swallows_its_cancellation_still_times_out():
    class Stubborn(Forward):
        async def on_stream_complete(self, ctx):
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
            await helpers.send_text(ctx, "late")

    orchestrator, ledger = orchestrate(Stubborn(), hook_timeout=0.2)
    got, error = await drain(orchestrator)
    assert isinstance(error, HookTimeoutError) and error.hook == "on_stream_complete"
    assert stream_summary(got)["text"] == "ab"
    assert ledger.only().status == "error"


@pytest.mark.timeout(20)
async def test_the_policys_own_hook_timeout_overrides_the_orchestrators():
    class Strict(Forward):
        hook_timeout = 0.2

        async def on_stream_complete(self, ctx):
            await asyncio.Event().wait()

    orchestrator, ledger = orchestrate(Strict())  # the orchestrator's default: 60 s
    assert orchestrator.effective_hook_timeout == 0.2
    _got, error = await drain(orchestrator)
    assert isinstance(error, HookTimeoutError) and error.timeout == 0.2

    class Patient(Forward):
        hook_timeout = None  # no limit, whatever the orchestrator says

        async def on_stream_complete(self, ctx):
            await asyncio.sleep(0.4)
            await helpers.send_text(ctx, "!")

    orchestrator, ledger = orchestrate(Patient(), hook_timeout=0.1)
    got, error = await drain(orchestrator)
    assert error is None and stream_summary(got)["text"] == "ab!"
    assert ledger.only().status == "ok"


@pytest.mark.timeout(20)
async def test_on_request_and_process_full_response_run_under_the_hook_timeout():
    class SlowRequest(NoOpPolicy):
        async def on_request(self, request, context):
            await asyncio.Event().wait()

    orchestrator, ledger = orchestrate(SlowRequest(), hook_timeout=0.2)
    with pytest.raises(HookTimeoutError) as info:
        await orchestrator.process_full_response(REQUEST)
    assert info.value.hook == "on_request"
    assert ledger.only().status == "error"

    class SlowResponse(SimplePolicy):
        async def process_full_response(self, response, context):
            await asyncio.Event().wait()

    client = ScriptedLLMClient(text_stream("a"))
    orchestrator, ledger = orchestrate(SlowResponse(), client=client, hook_timeout=0.2)
    with pytest.raises(HookTimeoutError) as info:
        await orchestrator.process_full_response(REQUEST)
    assert info.value.hook == "process_full_response"
    assert ledger.only().status == "error" and len(client.requests) == 1


def test_hook_limits_are_validated_naming_the_setting():
    client = ScriptedLLMClient(text_stream("a"))
    for bad in (0, -1, "30", True):
        with pytest.raises(ValueError, match="hook_timeout"):
            PolicyOrchestrator(NoOpPolicy(), client, hook_timeout=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="hook_block_warning"):
            PolicyOrchestrator(NoOpPolicy(), client, hook_block_warning=bad)  # type: ignore[arg-type]

    class Odd(NoOpPolicy):
        hook_timeout = -5

    with pytest.raises(ValueError, match=r"Odd\.hook_timeout"):
        PolicyOrchestrator(Odd(), client)
    orchestrator = PolicyOrchestrator(NoOpPolicy(), client, hook_timeout=None)
    assert orchestrator.effective_hook_timeout is None
    with pytest.raises(ValueError, match="hook_timeout"):
        orchestrator.hook_timeout = 0


# ----- hooks that block the event loop -----


@pytest.mark.timeout(20)
async def test_a_hook_that_blocks_the_event_loop_is_logged_and_recorded(caplog):
    class Blocks(Forward):
        async def on_content_delta(self, ctx):
            if ctx.ingress_state.current_block.content == "a":
                time.sleep(0.25)  # the bug: a blocking call in an async hook
            await super().on_content_delta(ctx)

        async def on_stream_complete(self, ctx):
            await asyncio.sleep(0.25)  # slow, but yields: not blocking

    orchestrator, ledger = orchestrate(Blocks(), hook_block_warning=0.2)
    with caplog.at_level(logging.WARNING, logger="luthien_lab.orchestrator"):
        got, error = await drain(orchestrator, transaction_id="tx-blocks")

    assert error is None and stream_summary(got)["text"] == "ab"
    assert ledger.only().status == "ok", "a warning, not a failure"
    # (A loaded machine can hold any step up a little: only the 250 ms one is sure.)
    [event] = [e for e in ledger.blocked() if e["blocked_ms"] >= 250]
    assert event["hook"] == "on_content_delta", "the awaiting hook is not reported"
    assert event["policy"].endswith("Blocks") and event["threshold_ms"] == 200
    messages = [r.getMessage() for r in caplog.records if "event loop" in r.getMessage()]
    assert any(
        "Blocks.on_content_delta" in m and "tx-blocks" in m and "asyncio.to_thread" in m
        for m in messages
    ), messages


@pytest.mark.timeout(20)
async def test_a_hook_that_blocks_past_its_timeout_fails_when_it_returns():
    class Sleeps(Forward):
        async def on_finish_reason(self, ctx):
            time.sleep(0.4)

    orchestrator, ledger = orchestrate(Sleeps(), hook_timeout=0.2, hook_block_warning=0.2)
    got, error = await drain(orchestrator)
    assert isinstance(error, HookTimeoutError) and error.hook == "on_finish_reason"
    assert stream_summary(got)["text"] == "ab"
    assert ledger.only().status == "error"
    assert "on_finish_reason" in [e["hook"] for e in ledger.blocked()]


@pytest.mark.timeout(20)
async def test_blocking_in_on_request_is_reported_too():
    class BlocksOnRequest(NoOpPolicy):
        async def on_request(self, request, context):
            time.sleep(0.25)
            return request

    orchestrator, ledger = orchestrate(BlocksOnRequest(), hook_block_warning=0.2)
    await orchestrator.process_full_response(REQUEST)
    assert "on_request" in [e["hook"] for e in ledger.blocked()]
    assert ledger.only().status == "ok"


# ----- what a policy emits -----


NOT_CHUNKS = {
    "dict": lambda: {"choices": [{"delta": {"content": "x"}}]},
    "none": lambda: None,
    "str": lambda: "plain text",
    "chunk dict": lambda: create_text_chunk("x").model_dump(),
}


@pytest.mark.parametrize("method", ["put", "put_nowait"])
@pytest.mark.parametrize("kind", NOT_CHUNKS)
async def test_a_non_chunk_fails_the_transaction_naming_the_hook_and_the_type(kind, method):
    class EmitsJunk(Forward):
        async def on_content_delta(self, ctx):
            if ctx.ingress_state.current_block.content == "ab":
                item = NOT_CHUNKS[kind]()
                if method == "put":
                    await ctx.egress_queue.put(item)
                else:
                    ctx.egress_queue.put_nowait(item)
            await super().on_content_delta(ctx)

    orchestrator, ledger = orchestrate(EmitsJunk(), text_stream("a", "b", "c"))
    got, error = await drain(orchestrator, transaction_id="tx-junk")

    assert isinstance(error, PolicyError), f"got {error!r}: a silent drop or an early end"
    assert error.hook == "on_content_delta" and isinstance(error.__cause__, TypeError)
    expected_type = {"dict": "dict", "none": "None", "str": "str", "chunk dict": "dict"}[kind]
    assert expected_type in str(error) and "not a stream chunk" in str(error)
    assert stream_summary(got)["text"] == "a", "only what came before the bad item"
    result = ledger.only()
    assert result.status == "error" and result.error_type == "PolicyError"
    assert result.egress_chunk_count == 1


async def test_a_hook_that_catches_the_refusal_still_fails_and_nothing_after_it_is_sent():
    class Careless(Forward):
        async def on_content_delta(self, ctx):
            if ctx.ingress_state.current_block.content == "ab":
                with contextlib.suppress(TypeError):
                    await ctx.egress_queue.put({"not": "a chunk"})
                with contextlib.suppress(TypeError, RuntimeError):
                    await helpers.send_text(ctx, "after the bad one")
            await super().on_content_delta(ctx)

    orchestrator, ledger = orchestrate(Careless(), text_stream("a", "b", "c"))
    got, error = await drain(orchestrator)
    assert isinstance(error, PolicyError) and error.hook == "on_content_delta"
    assert "dict" in str(error)
    assert stream_summary(got)["text"] == "a"
    assert ledger.only().status == "error"


async def test_process_full_response_must_return_a_model_response():
    class ReturnsDict(SimplePolicy):
        async def process_full_response(self, response, context):
            return response.model_dump()

    orchestrator, ledger = orchestrate(ReturnsDict())
    with pytest.raises(
        PolicyError, match=r"must return a response \(a litellm ModelResponse\), got dict"
    ) as info:
        await orchestrator.process_full_response(REQUEST)
    assert info.value.hook == "process_full_response"
    assert ledger.only().status == "error"


# ----- the lifecycle: every transaction that begins ends exactly once -----


class CountsRequests(NoOpPolicy):
    def __init__(self) -> None:
        self.on_request_calls = 0

    async def on_request(self, request, context):
        self.on_request_calls += 1
        return request.model_copy(update={"model": "rewritten"})


@pytest.mark.parametrize("mode", ["stream", "full"])
async def test_process_request_without_an_id_continues_with_the_request_it_returned(mode):
    policy = CountsRequests()
    client = ScriptedLLMClient(text_stream("a"))
    orchestrator, ledger = orchestrate(policy, client=client)
    final = await orchestrator.process_request(REQUEST)
    if mode == "stream":
        await run_stream(orchestrator, final)
    else:
        await orchestrator.process_full_response(final)
    assert policy.on_request_calls == 1
    assert ledger.statuses() == ["ok"]
    assert [r.model for r in client.requests] == ["rewritten"]


async def test_a_dict_for_a_pending_transaction_is_the_request_sent():
    client = ScriptedLLMClient(text_stream("a"))
    orchestrator, ledger = orchestrate(CountsRequests(), client=client)
    await orchestrator.process_request(REQUEST, "tx-dict")
    body = {"model": "from-the-dict", "messages": [{"role": "user", "content": "hi"}]}
    await orchestrator.process_full_response(body, "tx-dict")
    assert [r.model for r in client.requests] == ["from-the-dict"]
    assert ledger.statuses() == ["ok"] and ledger.started == ["tx-dict"]


async def test_a_dropped_process_request_result_ends_its_transaction_as_cancelled():
    orchestrator, ledger = orchestrate(CountsRequests())
    await orchestrator.process_request(REQUEST)  # the result is dropped at once
    gc.collect()
    assert ledger.statuses() == ["cancelled"]
    assert "abandoned" in ledger.only().error
    assert orchestrator.cancel_pending() == 0, "nothing is left pending"


async def test_cancel_pending_ends_transactions_begun_with_an_id():
    orchestrator, ledger = orchestrate(CountsRequests())
    kept = [await orchestrator.process_request(REQUEST, f"tx-{n}") for n in range(3)]
    assert orchestrator.cancel_pending("tx-1") == 1
    assert orchestrator.cancel_pending() == 2
    assert ledger.statuses() == ["cancelled"] * 3
    assert len(kept) == 3


async def test_an_id_already_pending_cannot_begin_again():
    orchestrator, ledger = orchestrate(CountsRequests())
    await orchestrator.process_request(REQUEST, "tx-twice")
    with pytest.raises(ValueError, match=r"tx-twice.*already pending"):
        await orchestrator.process_request(REQUEST, "tx-twice")
    await orchestrator.process_full_response(REQUEST, "tx-twice")
    assert ledger.statuses() == ["ok"]


async def test_closing_a_refusal_stream_early_still_ends_the_transaction():
    class Refuses(NoOpPolicy):
        async def on_request(self, request, context):
            raise RequestRefused("no")

    orchestrator, ledger = orchestrate(Refuses())
    stream = orchestrator.process_streaming_response(REQUEST)
    await stream.__anext__()
    await stream.aclose()  # type: ignore[attr-defined]
    assert ledger.statuses() == ["cancelled"]


# Each scenario runs one API path against a fresh orchestrator; the statuses it
# expects are the ledger's, in the order the transactions started.
Scenario = Callable[[PolicyOrchestrator], Awaitable[Any]]


class Everything(Forward):
    """Behaves according to the last user message: the scenarios pick a fault.
    ``parked`` is set when a hook starts waiting forever (a test cancels it then)."""

    def __init__(self) -> None:
        self.parked = asyncio.Event()

    async def on_request(self, request, context):
        said = request.last_user_message
        if said == "refuse":
            raise RequestRefused("refused")
        if said == "fail request":
            raise ValueError("on_request failed")
        if said == "hang request":
            self.parked.set()
            await asyncio.Event().wait()
        return request

    async def on_content_delta(self, ctx):
        said = ctx.final_request.last_user_message
        if said == "fail hook":
            raise ValueError("hook failed")
        if said == "hang hook":
            self.parked.set()
            await asyncio.Event().wait()
        if said == "junk":
            await ctx.egress_queue.put(None)
        await super().on_content_delta(ctx)

    async def process_full_response(self, response, context):
        if context.request.last_user_message == "fail hook":
            raise ValueError("hook failed")
        return response


def said(text: str) -> Request:
    return Request(model="m", messages=[{"role": "user", "content": text}])


async def _cancel_when_parked(orchestrator, awaitable: Awaitable[Any]) -> None:
    task = asyncio.ensure_future(awaitable)
    await orchestrator.policy.parked.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _close_after_first(orchestrator, request=None, transaction_id=None) -> None:
    stream = orchestrator.process_streaming_response(request or said("ok"), transaction_id)
    await stream.__anext__()
    await stream.aclose()


async def _suppress(awaitable: Awaitable[Any]) -> None:
    with contextlib.suppress(Exception):
        await awaitable


async def _two_phase(orchestrator, mode: str, how: str, text: str = "ok") -> None:
    tid = "tx-two-phase" if how != "identity" else None
    final = await orchestrator.process_request(said(text), tid)
    request: Any = final
    if how == "dict":
        request = final.model_dump(exclude_none=True)
    if mode == "stream":
        await _suppress(drain(orchestrator, request, tid))
    else:
        await _suppress(orchestrator.process_full_response(request, tid))


async def _dropped(orchestrator) -> None:
    await orchestrator.process_request(said("ok"))
    gc.collect()


async def _unstarted_continuation(orchestrator) -> None:
    final = await orchestrator.process_request(said("ok"))
    stream = orchestrator.process_streaming_response(final)
    await stream.aclose()  # closed before it ran: the transaction is still pending
    del final, stream
    gc.collect()


async def _bad_continuation(orchestrator) -> None:
    await orchestrator.process_request(said("ok"), "tx-bad")
    await _suppress(orchestrator.process_full_response({"model": "m"}, "tx-bad"))


async def _explicit_then_cancelled(orchestrator) -> None:
    await orchestrator.process_request(said("ok"), "tx-kept")
    orchestrator.cancel_pending()


SCENARIOS: dict[str, tuple[Scenario, list[str]]] = {
    "stream ok": (lambda o: drain(o, said("ok")), ["ok"]),
    "stream hook error": (lambda o: drain(o, said("fail hook")), ["error"]),
    "stream hook hangs": (lambda o: drain(o, said("hang hook")), ["error"]),
    "stream non-chunk": (lambda o: drain(o, said("junk")), ["error"]),
    "stream refused": (lambda o: drain(o, said("refuse")), ["blocked"]),
    "stream refused, closed early": (
        lambda o: _close_after_first(o, said("refuse")),
        ["cancelled"],
    ),
    "stream closed early": (_close_after_first, ["cancelled"]),
    "stream task cancelled": (
        lambda o: _cancel_when_parked(o, drain(o, said("hang hook"))),
        ["cancelled"],
    ),
    "stream on_request error": (lambda o: drain(o, said("fail request")), ["error"]),
    "full ok": (lambda o: o.process_full_response(said("ok")), ["ok"]),
    "full hook error": (
        lambda o: _suppress(o.process_full_response(said("fail hook"))),
        ["error"],
    ),
    "full refused": (lambda o: o.process_full_response(said("refuse")), ["blocked"]),
    "full task cancelled": (
        lambda o: _cancel_when_parked(o, o.process_full_response(said("hang request"))),
        ["cancelled"],
    ),
    "process_request error": (
        lambda o: _suppress(o.process_request(said("fail request"))),
        ["error"],
    ),
    "process_request cancelled": (
        lambda o: _cancel_when_parked(o, o.process_request(said("hang request"))),
        ["cancelled"],
    ),
    "two-phase stream by id": (lambda o: _two_phase(o, "stream", "id"), ["ok"]),
    "two-phase stream by identity": (lambda o: _two_phase(o, "stream", "identity"), ["ok"]),
    "two-phase stream, dict by id": (lambda o: _two_phase(o, "stream", "dict"), ["ok"]),
    "two-phase full by identity": (lambda o: _two_phase(o, "full", "identity"), ["ok"]),
    "two-phase full, dict by id": (lambda o: _two_phase(o, "full", "dict"), ["ok"]),
    "two-phase refused": (lambda o: _two_phase(o, "stream", "identity", "refuse"), ["blocked"]),
    "two-phase hook error": (
        lambda o: _two_phase(o, "stream", "identity", "fail hook"),
        ["error"],
    ),
    "two-phase, result dropped": (_dropped, ["cancelled"]),
    "two-phase, continuation never run": (_unstarted_continuation, ["cancelled"]),
    "two-phase, bad dict": (_bad_continuation, ["error"]),
    "two-phase by id, cancel_pending": (_explicit_then_cancelled, ["cancelled"]),
}


@pytest.mark.timeout(60)
async def test_every_api_path_ends_each_transaction_exactly_once():
    outcomes = {}
    for name, (scenario, _expected) in SCENARIOS.items():
        client = ScriptedLLMClient(text_stream("a", "b"), delay=0.02)
        orchestrator, ledger = orchestrate(Everything(), client=client, hook_timeout=2)
        with contextlib.suppress(Exception):
            await scenario(orchestrator)
        gc.collect()
        outcomes[name] = ledger.statuses()
        assert client.open_streams == 0, name
    expected = {name: statuses for name, (_s, statuses) in SCENARIOS.items()}
    wrong = {name: got for name, got in outcomes.items() if got != expected[name]}
    assert not wrong, f"paths that did not end exactly once as expected: {wrong}"


@pytest.mark.timeout(30)
async def test_a_silent_provider_is_an_upstream_timeout_not_a_hook_timeout():
    # The hook watchdog and the upstream watchdog are one timer: a silent provider is
    # still reported as the provider's fault, never as the policy's.
    client = ScriptedLLMClient(text_stream("a", "b"), stall_after=2)
    orchestrator, ledger = orchestrate(
        Forward(), client=client, hook_timeout=0.1, chunk_timeout=0.3
    )
    got, error = await drain(orchestrator)
    assert isinstance(error, UpstreamError) and not isinstance(error, PolicyError)
    assert stream_summary(got)["text"] == "a"
    assert ledger.only().error_type == "UpstreamTimeoutError"
