"""``SerialPolicy``: policies in a chain, each stage's egress the next stage's ingress.

    SerialPolicy([ShellRulesPolicy(), PathRulesPolicy(), RewriteRulesPolicy(rules=...)])

or, in a gateway config, a YAML list under ``policy:`` (see :mod:`luthien_lab.policies._loading`).

- **Requests** go through every stage's ``on_request`` in order; the last one's result
  goes upstream. A stage that refuses (``RequestRefused``) ends the chain there.
- **Streaming**: every ingress chunk is fed to stage 0, which runs exactly as it would
  under the orchestrator (its own :class:`StreamingChunkAssembler`, its hooks per
  block event); each chunk a stage emits is fed, at once and in order, to the next
  stage; the last stage writes to the client. A stage that holds text back delays
  only what it holds. At the end of the stream each stage in turn completes its open
  block and runs ``on_stream_complete``, and what it emitted then reaches the next.
- **Non-streaming**: ``process_full_response`` through every stage in order.
- Each stage has its own :class:`StreamingResponseContext`, assembler and scratchpad
  (two stages using the same state keys never collide). A stage that blocks
  (``mark_blocked``) marks the transaction blocked; what it sent on (a removed tool
  call, a note, ``finish_reason: stop``) is what the next stages see.
- **Observability**: events a stage emits carry ``stage``, ``stage_name`` and the
  transaction's ingress ``chunk_index``; each stage's hooks are reported to the
  pipeline listeners as ``"<i>:<name>/<hook>"`` (the timeline draws them as a group of
  lanes per stage); at the end, one ``stage_egress`` event per stage holds what it
  emitted (text, reasoning, tool calls, finish reason, chunk count; the last stage's
  is the transaction's final response). :meth:`SerialPolicy.stage_outputs` gives each
  stage's egress chunks during the transaction; :mod:`.serial_view` rebuilds them
  from a trace or a recording, to diff any two stages.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from luthien_lab._listeners import notify
from luthien_lab.errors import ConfigError, LuthienLabError, PolicyError
from luthien_lab.events import HookFired
from luthien_lab.policies._serial_run import Run
from luthien_lab.policies.base import (
    BLOCKED_KEY,
    STREAMING_HOOKS,
    Policy,
    PolicyContext,
    policy_config,
    policy_name,
)
from luthien_lab.request import Request
from luthien_lab.streaming.assembler import COMPLETE, DELTA, StreamingChunkAssembler
from luthien_lab.streaming.blocks import (
    ContentStreamBlock,
    ThinkingStreamBlock,
    ToolCallStreamBlock,
)
from luthien_lab.streaming.context import EgressQueue, StreamingResponseContext

if TYPE_CHECKING:
    from litellm.types.utils import ModelResponse

__all__ = [
    "STAGE_EGRESS_EVENT",
    "SerialPolicy",
    "StageOutput",
    "split_stage_hook",
    "stage_hook_name",
]

STAGE_EGRESS_EVENT = "stage_egress"
_KEY = "luthien_lab.serial"
_DELTA = {ContentStreamBlock: "on_content_delta", ToolCallStreamBlock: "on_tool_call_delta",
          ThinkingStreamBlock: "on_thinking_delta"}  # fmt: skip
_COMPLETE = {ContentStreamBlock: "on_content_complete", ToolCallStreamBlock: "on_tool_call_complete",
             ThinkingStreamBlock: "on_thinking_complete"}  # fmt: skip
_STAGE_HOOK = re.compile(r"^(\d+:[^/]*(?:/\d+:[^/]*)*)/([A-Za-z_]+)$")


def stage_hook_name(path: str, hook: str) -> str:
    """The hook name a stage's firing is reported under: ``"1:shell/on_tool_call_complete"``."""
    return f"{path}/{hook}"


def split_stage_hook(hook: str) -> tuple[str, str] | None:
    """``(stage path, hook)`` of a stage's reported hook name, None for any other."""
    match = _STAGE_HOOK.match(hook)
    return (match.group(1), match.group(2)) if match else None


@dataclass
class StageOutput:
    """What one stage emitted: its egress chunks (streaming) or response."""

    index: int
    name: str
    chunks: list[Any]
    response: Any = None


class SerialPolicy(Policy):
    """Runs ``stages`` in a chain (see the module doc).

    ``stages``: policies, a ``{name: policy}`` dict, or (from a config) dicts
    ``{"class": "module:Class", "config": {...}, "name"?: ...}``. ``names``: the
    stages' names (default: their class names, numbered when repeated).
    ``record_chunks``: also put each intermediate stage's chunk deltas in its
    ``stage_egress`` event.
    """

    def __init__(
        self, stages: Any, *, names: list[str] | None = None, record_chunks: bool = False
    ) -> None:
        policies, given = _resolve_stages(stages)
        if not policies:
            raise ConfigError("SerialPolicy needs at least one stage")
        names = list(names) if names is not None else given
        if len(names) != len(policies):
            raise ConfigError(f"{len(names)} names for {len(policies)} stages")
        seen: dict[str, int] = {}
        for i, name in enumerate(names):
            base = name or type(policies[i]).__name__
            if "/" in base:
                raise ConfigError(f"stage name {base!r} may not contain '/'")
            seen[base] = seen.get(base, 0) + 1
            names[i] = base if seen[base] == 1 else f"{base}#{seen[base]}"
        self.stages: list[Policy] = policies
        self.names: list[str] = names
        self.record_chunks = record_chunks
        self._hooks = [
            {
                h: getattr(p, h)
                for h in STREAMING_HOOKS
                if getattr(type(p), h) is not getattr(Policy, h)
            }
            for p in policies
        ]
        self.config = {
            "stages": [
                {"name": n, "class": _class_path(p), "config": policy_config(p)}
                for n, p in zip(names, policies, strict=True)
            ]
        }

    def __repr__(self) -> str:
        return f"SerialPolicy({', '.join(self.names)})"

    # ----- per transaction -----

    def _run(self, context: Any) -> Run:
        run = context.scratchpad.get(_KEY)
        if run is None:
            stages = list(zip(self.stages, self.names, self._hooks, strict=True))
            run = Run(stages, context.observability, context.transaction_id)
            context.scratchpad[_KEY] = run
        return run

    @staticmethod
    def _sync_blocked(run: Run, scratchpad: dict[str, Any]) -> None:
        if BLOCKED_KEY in scratchpad:
            return
        for stage in run.stages:
            if BLOCKED_KEY in stage.scratchpad:
                scratchpad[BLOCKED_KEY] = stage.scratchpad[BLOCKED_KEY]
                return

    def stage_outputs(self, context: Any) -> list[StageOutput]:
        """Each stage's egress so far, in this transaction (``context``: any hook's
        context of the transaction)."""
        run: Run | None = context.scratchpad.get(_KEY)
        if run is None:
            return []
        return [
            StageOutput(i, s.name, list(s.egress.sent) if s.egress is not None else [],
                        s.scratchpad.get(_KEY + ".response"))
            for i, s in enumerate(run.stages)
        ]  # fmt: skip

    def _report(
        self, run: Run, i: int, hook: str, block: Any, start: int, e0: int, e1: int
    ) -> None:
        stage = run.stages[i]
        event = HookFired(
            run.tid, stage_hook_name(stage.obs.path, hook), run.top_index(), block,
            start, time.perf_counter_ns(), e0, e1,
        )  # fmt: skip
        notify(run.emit_hook, event)

    def _failed(self, run: Run, i: int, hook: str, error: Exception) -> PolicyError:
        stage = run.stages[i]
        return PolicyError(
            stage_hook_name(stage.obs.path, hook), run.tid, error, policy_name(stage.policy)
        )

    # ----- request -----

    async def on_request(self, request: Request, context: PolicyContext) -> Request:
        run = self._run(context)
        try:
            for i, stage in enumerate(run.stages):
                ctx = PolicyContext(context.transaction_id, request, stage.scratchpad, stage.obs)
                start = time.perf_counter_ns()
                try:
                    final = await stage.policy.on_request(request, ctx)
                except (asyncio.CancelledError, LuthienLabError):
                    raise
                except Exception as error:
                    raise self._failed(run, i, "on_request", error) from error
                if not isinstance(final, Request):
                    problem = TypeError(
                        f"on_request must return a Request, got {type(final).__name__}"
                    )
                    raise self._failed(run, i, "on_request", problem)
                if final is not request and final._wire is None:
                    final._wire = request._wire
                if run.emit_hook and type(stage.policy).on_request is not Policy.on_request:
                    self._report(run, i, "on_request", None, start, 0, 0)
                request = final
        finally:
            self._sync_blocked(run, context.scratchpad)
        return request

    # ----- streaming -----

    def _open(self, run: Run, ctx: StreamingResponseContext) -> None:
        last = len(run.stages) - 1
        for i, stage in enumerate(run.stages):
            stage.assembler = StreamingChunkAssembler()
            stage.egress = ctx.egress_queue if i == last else EgressQueue()
            stage.ctx = StreamingResponseContext(
                transaction_id=ctx.transaction_id,
                final_request=ctx.final_request,
                ingress_assembler=stage.assembler,
                egress_queue=stage.egress,
                scratchpad=stage.scratchpad,
                observability=stage.obs,
                original_request=ctx.original_request,
            )
        run.streaming = True

    async def _fire(self, run: Run, i: int, name: str, block: Any) -> None:
        stage = run.stages[i]
        if run.emit_hook:
            start, before = time.perf_counter_ns(), stage.egress.count
        try:
            await stage.hooks[name](stage.ctx)
        except (asyncio.CancelledError, LuthienLabError):
            raise
        except Exception as error:
            raise self._failed(run, i, name, error) from error
        refused = getattr(stage.egress, "error", None)
        if refused is not None:  # the hook put something that is not a chunk, and caught it
            raise self._failed(run, i, name, refused) from refused
        if run.emit_hook:
            self._report(run, i, name, block, start, before, stage.egress.count)

    async def _feed(self, run: Run, i: int, chunk: Any) -> None:
        stage = run.stages[i]
        assembler = stage.assembler
        assert assembler is not None
        events = assembler.feed(chunk)
        hooks = stage.hooks
        if hooks:
            if "on_chunk_received" in hooks:
                await self._fire(run, i, "on_chunk_received", None)
            for kind, block in events:
                assembler.point_to(kind, block)
                if kind == DELTA:
                    name = _DELTA[type(block)]
                elif kind == COMPLETE:
                    name = _COMPLETE[type(block)]
                else:
                    name = "on_finish_reason"
                if name in hooks:
                    await self._fire(run, i, name, block)
        await self._forward(run, i)

    async def _forward(self, run: Run, i: int) -> None:
        if i + 1 < len(run.stages):
            for out in run.stages[i].egress.drain():
                await self._feed(run, i + 1, out)

    async def on_chunk_received(self, ctx: StreamingResponseContext) -> None:
        run = self._run(ctx)
        if not run.streaming:
            self._open(run, ctx)
        raw = ctx.ingress_state.raw_chunks
        run.index = len(raw) - 1
        await self._feed(run, 0, raw[-1])
        self._sync_blocked(run, ctx.scratchpad)

    async def on_stream_complete(self, ctx: StreamingResponseContext) -> None:
        run = self._run(ctx)
        if not run.streaming:
            self._open(run, ctx)
        run.index = len(ctx.ingress_state.raw_chunks)
        for i, stage in enumerate(run.stages):
            assembler = stage.assembler
            assert assembler is not None
            for kind, block in assembler.finish():
                assembler.point_to(kind, block)
                name = _COMPLETE[type(block)]
                if name in stage.hooks:
                    await self._fire(run, i, name, block)
            if "on_stream_complete" in stage.hooks:
                await self._fire(run, i, "on_stream_complete", None)
            await self._forward(run, i)
            if i + 1 < len(run.stages):
                stage.egress.close()
        self._sync_blocked(run, ctx.scratchpad)
        from luthien_lab.policies.serial_view import stream_egress_events

        for data in stream_egress_events(run, self.record_chunks):
            ctx.observability.emit_event(STAGE_EGRESS_EVENT, data)

    # ----- non-streaming -----

    async def process_full_response(
        self, response: ModelResponse, context: PolicyContext
    ) -> ModelResponse:
        from luthien_lab.policies.serial_view import response_summary

        run = self._run(context)
        try:
            for i, stage in enumerate(run.stages):
                ctx = PolicyContext(
                    context.transaction_id, context.request, stage.scratchpad, stage.obs
                )
                start = time.perf_counter_ns()
                try:
                    response = await stage.policy.process_full_response(response, ctx)
                except (asyncio.CancelledError, LuthienLabError):
                    raise
                except Exception as error:
                    raise self._failed(run, i, "process_full_response", error) from error
                stage.scratchpad[_KEY + ".response"] = response
                if run.emit_hook and (
                    type(stage.policy).process_full_response is not Policy.process_full_response
                ):
                    self._report(run, i, "process_full_response", None, start, 0, 0)
                summary = response_summary(response)
                data = {
                    "stage": i,
                    "stage_name": stage.name,
                    "stage_path": stage.obs.path,
                    **summary,
                }
                context.observability.emit_event(STAGE_EGRESS_EVENT, data)
        finally:
            self._sync_blocked(run, context.scratchpad)
        return response


def _class_path(policy: Policy) -> str:
    """``module:Class``, as a config's ``class:`` says it."""
    cls = type(policy)
    return f"{cls.__module__}:{cls.__qualname__}"


def _resolve_stages(stages: Any) -> tuple[list[Policy], list[str]]:
    """Policies and their given names ('' for none) from any accepted form."""
    if isinstance(stages, dict):
        items = list(stages.items())
    elif isinstance(stages, list | tuple):
        items = [("", s) for s in stages]
    else:
        raise ConfigError(
            f"SerialPolicy stages must be a list of policies or a dict name -> policy, "
            f"got {type(stages).__name__}"
        )
    policies, names = [], []
    for index, (name, stage) in enumerate(items):
        if isinstance(stage, dict):
            from luthien_lab.policies._loading import policy_from_spec

            name = name or str(stage.get("name") or "")
            spec = {k: v for k, v in stage.items() if k != "name"}
            stage = policy_from_spec(spec, f"stage {index}")
        if not isinstance(stage, Policy):
            raise ConfigError(
                f"stage {index} of SerialPolicy is {stage!r}, not a luthien_lab Policy instance"
            )
        policies.append(stage)
        names.append(str(name))
    return policies, names
