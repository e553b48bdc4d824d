"""Running one case through one policy: the unit every evaluation, fuzz and Ray shard uses."""

from __future__ import annotations

import copy
import operator
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from luthien_lab._ids import new_id
from luthien_lab.clients import LLMClient, ScriptedLLMClient
from luthien_lab.evaluate._cases import Case
from luthien_lab.evaluate._output import (
    Output,
    Summary,
    calls_json,
    summarize_chunk_dicts,
    summarize_chunks,
    summarize_response_dict,
)
from luthien_lab.evaluate._output import summary_of_response as _summary_of
from luthien_lab.events import (
    PipelineListener,
    TransactionFinished,
    TransactionInfo,
    TransactionResult,
)
from luthien_lab.orchestrator import PolicyOrchestrator
from luthien_lab.request import Request
from luthien_lab.streaming import lite
from luthien_lab.streaming._pacing import paced

if TYPE_CHECKING:
    from luthien_lab.policies.base import Policy

__all__ = [
    "PacedReplayClient",
    "RunOutcome",
    "SharedChunks",
    "raw_response",
    "raw_summary",
    "run_case",
]


class PacedReplayClient(ScriptedLLMClient):
    """Replays recorded chunks at their recorded time offsets."""

    def __init__(self, chunks: Sequence[Any], offsets: Sequence[float]):
        super().__init__(chunks, provider="replay")
        self.offsets = list(offsets)

    async def stream(self, request: Request) -> Any:
        self.requests.append(request)
        async for chunk in paced(self._chunks or [], self.offsets):
            yield chunk


class SharedChunks:
    """A recorded case's chunks as stream objects, built once per case and shared by
    every run of it (the baseline and each policy).

    Lite objects (:mod:`luthien_lab.streaming.lite`): building them costs about one
    ``json.loads`` per chunk, a litellm chunk ten times more. A policy may change a
    chunk it is given, so a run gets the shared objects only when its policy is known
    to leave them alone (:func:`read_only`); every other run gets a structural copy
    (chunk, choices, delta, tool calls, usage: what a policy can reach), a few times
    cheaper than building again), except the case's last run when no listener keeps
    the chunks (it takes the originals: no run comes after it). The production and
    provider references are read from the case's JSON dicts, never from these
    objects.
    """

    __slots__ = ("objects",)

    def __init__(self, case: Case) -> None:
        self.objects = (
            [lite.Chunk.from_dict(c) for c in case.chunks] if case.chunks is not None else None
        )

    def for_run(self, policy: Policy, last: bool = False) -> list[Any] | None:
        """The objects for one run of ``policy``. ``last``: no other run of this case
        comes after it and nothing else holds its chunks (no listener): it may have
        the originals, whatever it does to them."""
        if self.objects is None:
            return None
        if read_only(policy) or last:
            return self.objects
        return [_copy_chunk(c) for c in self.objects]


def read_only(policy: Policy) -> bool:
    """Policies that forward the chunks they receive without touching them."""
    from luthien_lab.policies.passthrough import NoOpPolicy

    return type(policy) is NoOpPolicy


def _shallow(obj: Any) -> Any:
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    return new


def _copy_chunk(chunk: Any) -> Any:
    """A copy of a lite chunk deep enough that no change through it reaches the
    original: the objects are copied, the strings (immutable) shared."""
    new = _shallow(chunk)
    fields = new.__dict__
    choices = fields.get("choices")
    if choices:
        copies = []
        for choice in choices:
            copied = _shallow(choice)
            delta = copied.__dict__.get("delta")
            if delta is not None:
                delta = copied.__dict__["delta"] = _shallow(delta)
                calls = delta.__dict__.get("tool_calls")
                if calls:
                    delta.__dict__["tool_calls"] = copy.deepcopy(calls)
                extra = delta.__dict__.get("provider_specific_fields")
                if extra:
                    delta.__dict__["provider_specific_fields"] = copy.deepcopy(extra)
            copies.append(copied)
        fields["choices"] = copies
    usage = fields.get("usage")
    if usage is not None:
        fields["usage"] = copy.deepcopy(usage)
    return new


class ReplayClient(LLMClient):
    """Plays chunk objects back to back, with no pause between them (``pacing="fast"``):
    a run then goes through the loop in a few steps, not one per chunk. A policy's
    own awaits still let other runs proceed."""

    def __init__(self, chunks: list[Any]) -> None:
        self.chunks = chunks

    async def stream(self, request: Request) -> Any:
        for chunk in self.chunks:
            yield chunk

    async def complete(self, request: Request) -> Any:
        from luthien_lab.streaming.reconstruct import reconstruct_full_response

        return reconstruct_full_response(self.chunks)

    def provider_for(self, request: Request) -> str:
        return "replay"


def replay_client(case: Case, pacing: str, chunks: list[Any] | None = None) -> LLMClient:
    if chunks is None and case.chunks is None and case.response is not None:
        return ScriptedLLMClient(response=lite.Response.from_dict(copy.deepcopy(case.response)))
    play = chunks if chunks is not None else [lite.Chunk.from_dict(c) for c in case.chunks or ()]
    if pacing == "original" and case.offsets:
        return PacedReplayClient(play, case.offsets)
    return ReplayClient(play)


def raw_summary(case: Case) -> Summary | None:
    """What the provider sent in a recorded case (None for a prompt case)."""
    if case.chunks is not None:
        return summarize_chunk_dicts(case.chunks)
    if case.response is not None:
        return summarize_response_dict(case.response)
    return None


def raw_response(case: Case) -> Any:
    """The recorded stream reconstructed into one response (None for a prompt case)."""
    if case.response is not None and case.chunks is None:
        return lite.Response.from_dict(copy.deepcopy(case.response))
    if case.chunks is None:
        return None
    from luthien_lab.streaming.reconstruct import reconstruct_full_response

    return reconstruct_full_response([lite.Chunk.from_dict(c) for c in case.chunks])


class _Collector(PipelineListener):
    """Keeps each transaction's result, and tags transactions for the store."""

    def __init__(self) -> None:
        self.results: dict[str, TransactionResult] = {}
        self.tags: dict[str, dict[str, Any]] = {}

    def transaction_started(self, info: TransactionInfo) -> None:
        tags = self.tags.pop(info.transaction_id, None)
        if tags:
            info.tags.update(tags)

    def transaction_finished(self, event: TransactionFinished) -> None:
        self.results[event.transaction_id] = event.result


@dataclass
class RunOutcome:
    """One (case, policy) run. ``sent``: the chunks the client got (streaming) or
    ``[response]``; the full responses are built only when asked for."""

    transaction_id: str
    status: str
    summary: Summary
    sent: list[Any]
    streamed: bool
    result: TransactionResult | None
    refused: bool
    error: BaseException | None
    ttfc_ns: int | None
    total_ns: int
    chunks_in: int
    chunks_out: int

    @property
    def final(self) -> Any:
        """The response the client got (ModelResponse, litellm or lite; None if none)."""
        if not self.sent:
            return None
        if not self.streamed:
            return self.sent[0]
        from luthien_lab.streaming.reconstruct import reconstruct_full_response

        return reconstruct_full_response(self.sent)

    @property
    def original(self) -> Any:
        """What the provider sent in this run (None if it was never called)."""
        return self.result.original_response if self.result is not None else None

    @property
    def blocked(self) -> bool:
        return self.status == "blocked"

    @property
    def output(self) -> Output:
        return self.summary.output(self.error)

    def tool_calls_json(self) -> str:
        return calls_json(self.summary.calls)

    @property
    def error_text(self) -> str | None:
        if self.error is None:
            return None
        return f"{type(self.error).__name__}: {self.error}"


def _same_objects(sent: list[Any], chunks: list[Any]) -> bool:
    return len(sent) == len(chunks) and all(map(operator.is_, sent, chunks))


async def run_case(
    policy: Policy,
    case: Case,
    client: LLMClient | None,
    *,
    pacing: str = "fast",
    listeners: Sequence[PipelineListener] = (),
    tags: dict[str, Any] | None = None,
    chunk_timeout: float | None = 60.0,
    chunks: list[Any] | None = None,
    raw: Summary | None = None,
) -> RunOutcome:
    """Run ``case`` through ``policy`` (streamed, or through the full-response path for
    a recorded non-streaming response); never raises for a policy or provider error
    (it is reported in the outcome). ``chunks``: this run's chunk objects
    (:class:`SharedChunks`), else built from the case; ``raw``: the summary of the
    recorded chunks, when known (a read-only policy that sends exactly them needs no
    reading of its own)."""
    if case.recorded:
        client = replay_client(case, pacing, chunks)
    elif client is None:
        raise ValueError(f"case {case.id!r} is a prompt case and needs a client")
    collector = _Collector()
    tid = new_id()
    if tags:
        collector.tags[tid] = dict(tags)
    orchestrator = PolicyOrchestrator(
        policy, client, listeners=[collector, *listeners], chunk_timeout=chunk_timeout
    )
    request = Request(**case.request)
    streamed = case.chunks is not None or case.response is None
    request.stream = streamed
    sent: list[Any] = []
    first: int | None = None
    error: BaseException | None = None
    start = time.perf_counter_ns()
    try:
        if streamed:
            async for chunk in orchestrator.process_streaming_response(request, tid):
                if first is None:
                    first = time.perf_counter_ns()
                sent.append(chunk)
        else:
            response = await orchestrator.process_full_response(request, tid)
            first = time.perf_counter_ns()
            sent.append(response)
    except Exception as exc:
        error = exc
    end = time.perf_counter_ns()
    result = collector.results.get(tid)
    status = result.status if result is not None else ("error" if error else "ok")
    refused = bool(
        result is not None
        and result.status == "blocked"
        and result.error is not None
        and result.error_type is None
    )
    if not streamed:
        summary = _summary_of(sent[0] if sent else None)
    elif (
        raw is not None and chunks is not None and read_only(policy) and _same_objects(sent, chunks)
    ):
        summary = raw
    else:
        summary = summarize_chunks(sent)
    return RunOutcome(
        transaction_id=tid,
        status=status,
        summary=summary,
        sent=sent,
        streamed=streamed,
        result=result,
        refused=refused,
        error=error,
        ttfc_ns=None if first is None else first - start,
        total_ns=end - start,
        chunks_in=result.ingress_chunk_count if result is not None else 0,
        chunks_out=len(sent) if streamed else 0,
    )
