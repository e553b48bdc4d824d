"""``RegexBlockPolicy``: block responses whose text or tool calls match a pattern."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, field_validator

from luthien_lab.policies._configurable import build_config
from luthien_lab.policies._gate import GatePolicy

if TYPE_CHECKING:
    from luthien_lab.request import Request

__all__ = ["RegexBlockPolicy"]


_GLOBAL_FLAGS = re.compile(r"\(\?([aiLmsux]+)\)")


def _scoped(pattern: str) -> str:
    """``pattern`` as one alternative of the combined expression: leading global flags
    (``(?i)drop table``, valid alone) become scoped ones (``(?i:drop table)``), since
    global flags are only allowed at the very start of the whole expression."""
    flags = _GLOBAL_FLAGS.match(pattern)
    if flags is None:
        return f"(?:{pattern})"
    return f"(?{flags.group(1)}:{pattern[flags.end() :]})"


def _compile(patterns: list[str], case_sensitive: bool) -> re.Pattern[str] | None:
    if not patterns:
        return None
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.compile("|".join(_scoped(p) for p in patterns), flags)


class RegexBlockPolicy(GatePolicy):
    """Blocks content that matches any of a list of regular expressions.

    Config:

    - ``patterns``: regexes searched in the response text (and in tool calls unless
      ``tool_patterns`` is given);
    - ``tool_patterns``: regexes searched in each tool call's name and arguments
      (default: ``patterns``; ``[]`` checks no tool call);
    - ``message``: what the client gets instead of a matching text;
    - ``blocked_message``: optional text appended for each blocked tool call
      (format string with ``{name}`` and ``{reason}``);
    - ``case_sensitive`` (default False).

    Text: the content block is buffered until complete (a pattern can span any number
    of chunks), then either sent as it came or replaced by ``message``. Tool calls:
    a call whose name or arguments match is removed (finish reason ``stop`` when none
    is left). Either way the transaction is marked ``blocked``.
    """

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")

        patterns: list[str]
        tool_patterns: list[str] | None = None
        message: str = "This response was blocked by policy."
        blocked_message: str | None = None
        case_sensitive: bool = False

        @field_validator("patterns", "tool_patterns")
        @classmethod
        def _valid_regexes(cls, value: list[str] | None) -> list[str] | None:
            for pattern in value or []:
                try:
                    re.compile(pattern)
                except re.error as error:
                    raise ValueError(f"invalid regex {pattern!r}: {error}") from None
            return value

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        self.config = build_config(type(self), config, kwargs)
        cfg = self.config
        self.blocked_message = cfg.blocked_message
        self._text = _compile(cfg.patterns, cfg.case_sensitive)
        tool_patterns = cfg.patterns if cfg.tool_patterns is None else cfg.tool_patterns
        self._tools = _compile(tool_patterns, cfg.case_sensitive)

    def text_match(self, text: str) -> str | None:
        """The matched text, or None."""
        match = self._text.search(text) if self._text is not None else None
        return match.group(0) if match else None

    def tool_call_match(self, name: str, arguments: str) -> str | None:
        if self._tools is None:
            return None
        match = self._tools.search(name) or self._tools.search(arguments)
        return match.group(0) if match else None

    async def on_response_content(self, content: str, request: Request) -> str:
        found = self.text_match(content)
        if found is None:
            return content
        self.note_block(f"response text matched {found!r}", kind="content")
        return self.config.message

    async def on_response_tool_call(self, tool_call: Any, request: Request) -> Any | None:
        name = tool_call.function.name or ""
        found = self.tool_call_match(name, tool_call.function.arguments or "")
        if found is None:
            return tool_call
        self.note_block(f"tool call {name!r} matched {found!r}", name=name)
        return None
