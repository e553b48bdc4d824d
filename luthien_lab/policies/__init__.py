"""Policies: the ``Policy`` hooks, ``SimplePolicy``, and the built-ins.

Built-ins (each takes its config as keyword arguments or ``config=Cls.Config(...)``):

- :class:`NoOpPolicy` — forwards everything unchanged;
- :class:`UppercasePolicy` — uppercases the response text;
- :class:`StringReplacePolicy` — replaces strings while streaming (bounded hold-back);
- :class:`RegexBlockPolicy` — blocks text or tool calls matching regexes;
- :class:`ToolFilterPolicy` — blocks tool calls by name (allow/deny lists);
- :class:`ToolCallJudgePolicy` — an LLM judges each tool call (fails closed);
- :class:`SerialPolicy` — policies in a chain, each stage's output the next one's input.

For coding agents (Claude Code, Codex; see :mod:`.agent_tools`):

- :class:`ShellRulesPolicy` — blocks shell commands by rule, with a shell parser;
- :class:`PathRulesPolicy` — allows or blocks file writes and reads by path;
- :class:`NetworkRulesPolicy` — blocks network tools and hosts;
- :class:`RewriteRulesPolicy` — rewrites tool-call arguments (``pip`` -> ``uv pip``);
- :class:`PlainRulesPolicy` — rules in plain English, judged by a model (cached).

A policy from YAML (luthien-proxy's ``policy: {class, config}`` format, or a list:
a chain): :func:`load_policy`, :func:`policy_from_spec`, :func:`resolve_policy_class`;
anything naming a policy (instance, class, dict, YAML path, class path): :func:`resolve_policy`.
"""

from luthien_lab.policies._loading import (
    load_policy,
    policy_from_spec,
    resolve_policy,
    resolve_policy_class,
)
from luthien_lab.policies.base import Policy, PolicyContext
from luthien_lab.policies.llm_judge import JudgeVerdict, ToolCallJudgePolicy
from luthien_lab.policies.network_rules import NetworkRulesPolicy
from luthien_lab.policies.passthrough import NoOpPolicy
from luthien_lab.policies.path_rules import PathRulesPolicy
from luthien_lab.policies.plain_rules import PlainRulesPolicy
from luthien_lab.policies.regex_block import RegexBlockPolicy
from luthien_lab.policies.rewrite_rules import RewriteRulesPolicy
from luthien_lab.policies.serial import SerialPolicy
from luthien_lab.policies.shell_rules import ShellRulesPolicy
from luthien_lab.policies.simple import SimplePolicy
from luthien_lab.policies.string_replace import StringReplacePolicy
from luthien_lab.policies.tool_filter import ToolFilterPolicy
from luthien_lab.policies.uppercase import UppercasePolicy

__all__ = [
    "JudgeVerdict",
    "NetworkRulesPolicy",
    "NoOpPolicy",
    "PathRulesPolicy",
    "PlainRulesPolicy",
    "Policy",
    "PolicyContext",
    "RegexBlockPolicy",
    "RewriteRulesPolicy",
    "SerialPolicy",
    "ShellRulesPolicy",
    "SimplePolicy",
    "StringReplacePolicy",
    "ToolCallJudgePolicy",
    "ToolFilterPolicy",
    "UppercasePolicy",
    "load_policy",
    "policy_from_spec",
    "resolve_policy",
    "resolve_policy_class",
]
