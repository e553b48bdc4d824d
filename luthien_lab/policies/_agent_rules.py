"""``AgentRulePolicy``: the base of the coding-agent policies (shell, path, network,
rewrite and plain-English rules).

Each complete tool call is turned into a :class:`Verdict` by :meth:`AgentRulePolicy.verdict`
(allow, block with a reason, or rewrite to new arguments). Built on
:class:`~luthien_lab.policies._gate.GatePolicy`, so a blocked call is removed, the
agent gets text saying what was blocked and why (``blocked_message``), the finish
reason becomes ``stop`` when no tool call is left, and the transaction is marked
``blocked``; a rewritten call goes out as one well-formed tool-call chunk with the
same id and name. Every block and rewrite emits an ``agent_rule`` event (policy, tool,
decision, reason, rule, the ingress ``chunk_index``; before/after arguments for a
rewrite), which the timeline shows.

These policies transform tool calls only, so ``SimplePolicy`` streams text and thinking
through as they arrive; only tool calls are held until complete.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from luthien_lab.clients._litellm import litellm_types
from luthien_lab.policies._gate import GatePolicy, current_context
from luthien_lab.policies.agent_tools import DEFAULT_TOOLS, ToolSpec, request_working_dir
from luthien_lab.streaming import lite
from luthien_lab.streaming.lite import use_litellm

if TYPE_CHECKING:
    from luthien_lab.request import Request

__all__ = [
    "DEFAULT_BLOCKED_MESSAGE",
    "AgentRuleConfig",
    "AgentRulePolicy",
    "ToolSpecConfig",
    "Verdict",
    "chunk_index_of",
    "current_tool_call",
]

DEFAULT_BLOCKED_MESSAGE = "\n[luthien blocked the {name} call: {reason}]"
_CALL: ContextVar[Any] = ContextVar("luthien_lab_agent_tool_call", default=None)


def current_tool_call() -> Any:
    """The tool call :meth:`AgentRulePolicy.verdict` is deciding about (None outside)."""
    return _CALL.get()


_CWD_KEY = "luthien_lab.agent_cwd"


@dataclass(frozen=True)
class Verdict:
    """What a rule decided about one tool call."""

    decision: Literal["allow", "block", "rewrite"] = "allow"
    reason: str = ""
    rule: str = ""
    arguments: str | None = None  # the new arguments of a rewrite


ALLOW = Verdict()


class ToolSpecConfig(BaseModel):
    """A tool the policy should understand beyond :data:`DEFAULT_TOOLS`."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["shell", "write", "edit", "delete", "read", "fetch", "search", "patch"]
    field: str = ""
    workdir: str = ""


class AgentRuleConfig(BaseModel):
    """Settings every agent policy shares.

    - ``cwd``: the agent's working directory (default: the one its request names);
    - ``home``: its home directory (default unknown: ``~`` is matched as ``~``);
    - ``tools``: more tools to read (``{name: {kind, field, workdir}}``);
    - ``blocked_message``: text the agent gets for each blocked call (``{name}``,
      ``{reason}``; ``null`` for none).
    """

    model_config = ConfigDict(extra="forbid")

    cwd: str | None = None
    home: str | None = None
    tools: dict[str, ToolSpecConfig] = Field(default_factory=dict)
    blocked_message: str | None = DEFAULT_BLOCKED_MESSAGE


def chunk_index_of(ctx: Any) -> int:
    """The ingress chunk a streaming hook is running for (-1 outside a stream)."""
    assembler = getattr(ctx, "ingress_assembler", None)
    return len(assembler.state.raw_chunks) - 1 if assembler is not None else -1


class AgentRulePolicy(GatePolicy):
    """Base class; subclasses implement :meth:`verdict` (see the module doc)."""

    config: Any

    def _setup(self) -> None:
        cfg = self.config
        self.blocked_message = cfg.blocked_message
        self.tools: dict[str, ToolSpec] = dict(DEFAULT_TOOLS)
        for name, spec in cfg.tools.items():
            self.tools[name] = ToolSpec(spec.kind, spec.field, spec.workdir)

    # ----- what subclasses implement -----

    async def verdict(self, name: str, arguments: str, cwd: str | None) -> Verdict:
        """The decision for one complete tool call (``cwd``: the agent's working dir)."""
        return ALLOW

    # ----- the tool-call hook -----

    def working_dir(self, request: Any, ctx: Any = None) -> str | None:
        """The configured ``cwd``, else the request's (cached per transaction)."""
        if self.config.cwd:
            return str(self.config.cwd)
        if ctx is None:
            return request_working_dir(request)
        cached = ctx.scratchpad.get(_CWD_KEY)
        if cached is None:
            cached = ctx.scratchpad[_CWD_KEY] = (request_working_dir(request),)
        return cached[0]

    async def on_response_tool_call(self, tool_call: Any, request: Request) -> Any | None:
        name = tool_call.function.name or ""
        arguments = tool_call.function.arguments or ""
        ctx = current_context()
        token = _CALL.set(tool_call)
        try:
            verdict = await self.verdict(name, arguments, self.working_dir(request, ctx))
        finally:
            _CALL.reset(token)
        if verdict.decision == "allow":
            return tool_call
        if ctx is not None:
            data: dict[str, Any] = {
                "policy": type(self).__name__,
                "tool": name,
                "tool_call_id": tool_call.id,
                "decision": verdict.decision,
                "reason": verdict.reason,
                "rule": verdict.rule,
                "chunk_index": chunk_index_of(ctx),
            }
            if verdict.decision == "rewrite":
                data["arguments_before"] = arguments
                data["arguments_after"] = verdict.arguments
            ctx.observability.emit_event("agent_rule", data)
        if verdict.decision == "block":
            self.note_block(verdict.reason, name=name)
            return None
        return _tool_call(tool_call, name, verdict.arguments or "")


def _tool_call(template: Any, name: str, arguments: str) -> Any:
    """A tool call with ``template``'s id, in ``template``'s family (litellm's, or the
    lightweight one: a replayed stream never needs litellm)."""
    if use_litellm(template):
        types = litellm_types()
        function = types.Function(name=name, arguments=arguments)
        return types.ChatCompletionMessageToolCall(
            id=template.id, type="function", function=function
        )
    function = lite.Function(arguments=arguments, name=name)
    return lite.ToolCall(function=function, id=template.id, type="function")
