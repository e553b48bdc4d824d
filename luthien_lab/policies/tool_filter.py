"""``ToolFilterPolicy``: block tool calls by name (allow-list or deny-list)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, model_validator

from luthien_lab.policies._configurable import build_config
from luthien_lab.policies._gate import GatePolicy

if TYPE_CHECKING:
    from luthien_lab.request import Request

__all__ = ["ToolFilterPolicy"]


class ToolFilterPolicy(GatePolicy):
    """Blocks tool calls by name; text passes through untouched.

    Config:

    - ``allow``: only these tool names may be called (every other call is blocked);
    - ``deny``: these tool names are blocked (checked after ``allow``);
    - ``blocked_message``: optional text appended to the response for each blocked
      call, a format string with ``{name}`` and ``{reason}``
      (e.g. ``"\\n[tool call {name} was blocked]"``).

    Give ``allow``, ``deny`` or both. A blocked call is removed from the response, the
    transaction is marked ``blocked``; when every call was blocked, the finish reason
    ``tool_calls`` becomes ``stop`` (streaming and non-streaming alike).
    """

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")

        allow: list[str] | None = None
        deny: list[str] = []
        blocked_message: str | None = None

        @model_validator(mode="after")
        def _some_rule(self) -> ToolFilterPolicy.Config:
            if self.allow is None and not self.deny:
                raise ValueError("give 'allow' (tools that may be called) or 'deny' (or both)")
            return self

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        self.config = build_config(type(self), config, kwargs)
        self.blocked_message = self.config.blocked_message
        self._allow = frozenset(self.config.allow) if self.config.allow is not None else None
        self._deny = frozenset(self.config.deny)

    def reason_to_block(self, name: str) -> str | None:
        """Why a call to tool ``name`` is blocked, or None when it is allowed."""
        if self._allow is not None and name not in self._allow:
            return f"tool {name!r} is not in the allow-list"
        if name in self._deny:
            return f"tool {name!r} is in the deny-list"
        return None

    async def on_response_tool_call(self, tool_call: Any, request: Request) -> Any | None:
        name = tool_call.function.name or ""
        reason = self.reason_to_block(name)
        if reason is None:
            return tool_call
        self.note_block(reason, name=name)
        return None
