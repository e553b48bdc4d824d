"""Running one case through one policy: the unit every evaluation, fuzz and Ray shard uses."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from luthien_lab.clients import ScriptedLLMClient
from luthien_lab.evaluate._cases import Case, Output, output_of, tool_calls_json
from luthien_lab.events import (
    PipelineListener,
    TransactionFinished,
    TransactionInfo,
    TransactionResult,
)
from luthien_lab.orchestrator import PolicyOrchestrator
from luthien_lab.request import Request

if TYPE_CHECKING:
    from luthien_lab.clients import LLMClient
    from luthien_lab.policies.base import Policy

__all__ = ["PacedReplayClient", "RunOutcome", "raw_response", "run_case"]

PACINGS = ("fast", "original")


class PacedReplayClient(ScriptedLLMClient):
    """Replays recorded chunks at their recorded time offsets."""

    def __init__(self, chunks: Sequence[Any], offsets: Sequence[float]):
        super().__init__(chunks, provider="replay")
        self.offsets = list(offsets)

    async def stream(self, request: Request) -> Any:
        self.requests.append(request)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for chunk, offset in zip(self._chunks or [], self.offsets, strict=False):
            wait = start + offset - loop.time()
            await asyncio.sleep(max(wait, 0))
            yield chunk


def replay_client(case: Case, pacing: str) -> LLMClient:
    assert case.chunks is not None
    if pacing == "original" and case.offsets:
        return PacedReplayClient(case.chunks, case.offsets)
    return ScriptedLLMClient(case.chunks, provider="replay")


def raw_response(case: Case) -> Any:
    """The recorded stream reconstructed into one response (None for a prompt case)."""
    if case.chunks is None:
        return None
    from luthien_lab.clients._scripted import to_chunk
    from luthien_lab.streaming.reconstruct import reconstruct_full_response

    return reconstruct_full_response([to_chunk(c) for c in case.chunks])


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
    """One (case, policy) run."""

    transaction_id: str
    status: str
    final: Any  # ModelResponse or None
    original: Any  # what the provider sent in this run (None if never called)
    refused: bool
    error: BaseException | None
    ttfc_ns: int | None
    total_ns: int
    chunks_in: int
    chunks_out: int

    @property
    def output(self) -> Output:
        return output_of(self.final, self.error)

    def tool_calls_json(self) -> str:
        return tool_calls_json(self.final)

    @property
    def error_text(self) -> str | None:
        if self.error is None:
            return None
        return f"{type(self.error).__name__}: {self.error}"


async def run_case(
    policy: Policy,
    case: Case,
    client: LLMClient | None,
    *,
    pacing: str = "fast",
    listeners: Sequence[PipelineListener] = (),
    tags: dict[str, Any] | None = None,
    chunk_timeout: float | None = 60.0,
) -> RunOutcome:
    """Stream ``case`` through ``policy``; never raises for a policy or provider error
    (it is reported in the outcome)."""
    from luthien_lab.streaming.reconstruct import reconstruct_full_response

    if case.chunks is not None:
        client = replay_client(case, pacing)
    elif client is None:
        raise ValueError(f"case {case.id!r} is a prompt case and needs a client")
    collector = _Collector()
    tid = uuid.uuid4().hex
    if tags:
        collector.tags[tid] = dict(tags)
    orchestrator = PolicyOrchestrator(
        policy, client, listeners=[collector, *listeners], chunk_timeout=chunk_timeout
    )
    request = Request(**case.request)
    request.stream = True
    sent: list[Any] = []
    first: int | None = None
    error: BaseException | None = None
    start = time.perf_counter_ns()
    try:
        async for chunk in orchestrator.process_streaming_response(request, tid):
            if first is None:
                first = time.perf_counter_ns()
            sent.append(chunk)
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
    final = reconstruct_full_response(sent) if sent else None
    original = result.original_response if result is not None else None
    return RunOutcome(
        transaction_id=tid,
        status=status,
        final=final,
        original=original,
        refused=refused,
        error=error,
        ttfc_ns=None if first is None else first - start,
        total_ns=end - start,
        chunks_in=result.ingress_chunk_count if result is not None else 0,
        chunks_out=len(sent),
    )
