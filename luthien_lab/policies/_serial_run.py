"""The per-transaction state of a :class:`~luthien_lab.policies.serial.SerialPolicy`:
one :class:`Stage` per policy (its scratchpad, assembler, egress queue, context) and
the :class:`StageObservability` that names the stage in everything it reports.
Kept in the transaction's scratchpad, never on the policy."""

from __future__ import annotations

from typing import Any

from luthien_lab._listeners import Emit, Emitters
from luthien_lab.observability import ObservabilityContext
from luthien_lab.streaming.assembler import StreamingChunkAssembler
from luthien_lab.streaming.context import StreamingResponseContext

__all__ = ["Run", "Stage", "StageObservability"]


class StageObservability(ObservabilityContext):
    """A stage's ``ctx.observability``: the transaction's, with the stage named."""

    def __init__(self, outer: ObservabilityContext, run: Run, index: int, name: str) -> None:
        self.outer = outer
        self.run = run
        self.index = index
        self.name = name
        self.path = run.path_of(index, name)
        self.transaction_id = outer.transaction_id

    @property
    def listeners(self) -> list[Any]:
        return list(getattr(self.outer, "listeners", None) or ())

    @property
    def emitters(self) -> Emitters | None:
        return getattr(self.outer, "emitters", None)

    def top_index(self) -> int:
        return self.run.top_index()

    def _tag(self, data: dict[str, Any] | None) -> dict[str, Any]:
        out = dict(data or {})
        out.setdefault("stage", self.index)
        out.setdefault("stage_name", self.name)
        out["stage_path"] = self.path
        if "chunk_index" in out or self.run.index is not None:
            out["chunk_index"] = self.run.top_index()
        return out

    def emit_event(self, event_type: str, data: dict[str, Any] | None = None) -> None:
        self.outer.emit_event(event_type, self._tag(data))

    def record_metric(self, name: str, value: float, labels: dict[str, Any] | None = None) -> None:
        self.outer.record_metric(name, value, {**(labels or {}), "stage": self.name})

    def add_span_attribute(self, key: str, value: Any) -> None:
        self.outer.add_span_attribute(f"{self.path}.{key}", value)


class Stage:
    __slots__ = ("assembler", "ctx", "egress", "hooks", "name", "obs", "policy", "scratchpad")

    def __init__(self, policy: Any, name: str, hooks: dict[str, Any], obs: StageObservability):
        self.policy = policy
        self.name = name
        self.hooks = hooks
        self.obs = obs
        self.scratchpad: dict[str, Any] = {}
        self.assembler: StreamingChunkAssembler | None = None
        self.egress: Any = None
        self.ctx: StreamingResponseContext | None = None


class Run:
    """One transaction's chain: kept in the transaction's scratchpad, never on the policy."""

    __slots__ = ("emit_hook", "index", "outer", "prefix", "stages", "streaming", "tid")

    def __init__(
        self, stages: list[tuple[Any, str, dict[str, Any]]], outer: ObservabilityContext, tid: str
    ) -> None:
        self.tid = tid
        self.outer = outer
        self.index: int | None = None
        self.streaming = False
        parent = getattr(outer, "path", "")
        self.prefix = f"{parent}/" if parent else ""
        self.emit_hook = _hook_emitters(outer)
        self.stages = [
            Stage(policy, name, hooks, StageObservability(outer, self, i, name))
            for i, (policy, name, hooks) in enumerate(stages)
        ]

    def path_of(self, index: int, name: str) -> str:
        return f"{self.prefix}{index}:{name}"

    def top_index(self) -> int:
        parent = getattr(self.outer, "top_index", None)
        if parent is not None:
            return int(parent())
        return -1 if self.index is None else self.index


def _hook_emitters(outer: ObservabilityContext) -> tuple[Emit, ...]:
    """Where the stages' hooks are reported: the transaction's listener table (the
    orchestrator's dispatch), else one built from the listeners a context names."""
    emitters = getattr(outer, "emitters", None)
    if isinstance(emitters, Emitters):
        return emitters.hook_fired
    listeners = getattr(outer, "listeners", None) or ()
    return Emitters(listeners).hook_fired if listeners else ()
