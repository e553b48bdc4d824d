"""Policies: the ``Policy`` hooks, ``SimplePolicy``, and the built-ins.

Built-ins (each takes its config as keyword arguments or ``config=Cls.Config(...)``):

- :class:`NoOpPolicy` — forwards everything unchanged;
- :class:`UppercasePolicy` — uppercases the response text;
- :class:`StringReplacePolicy` — replaces strings while streaming (bounded hold-back);
- :class:`RegexBlockPolicy` — blocks text or tool calls matching regexes;
- :class:`ToolFilterPolicy` — blocks tool calls by name (allow/deny lists);
- :class:`ToolCallJudgePolicy` — an LLM judges each tool call (fails closed).
"""

from luthien_lab.policies.base import Policy, PolicyContext
from luthien_lab.policies.llm_judge import JudgeVerdict, ToolCallJudgePolicy
from luthien_lab.policies.passthrough import NoOpPolicy
from luthien_lab.policies.regex_block import RegexBlockPolicy
from luthien_lab.policies.simple import SimplePolicy
from luthien_lab.policies.string_replace import StringReplacePolicy
from luthien_lab.policies.tool_filter import ToolFilterPolicy
from luthien_lab.policies.uppercase import UppercasePolicy

__all__ = [
    "JudgeVerdict",
    "NoOpPolicy",
    "Policy",
    "PolicyContext",
    "RegexBlockPolicy",
    "SimplePolicy",
    "StringReplacePolicy",
    "ToolCallJudgePolicy",
    "ToolFilterPolicy",
    "UppercasePolicy",
]
