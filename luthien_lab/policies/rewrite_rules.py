"""``RewriteRulesPolicy``: rewrite an agent's tool-call arguments before they run.

Two kinds of rules:

- shell rewrites: every simple command of a shell tool call (Claude Code's ``Bash``,
  Codex's ``exec_command``/``shell``...) is parsed; one whose program is ``command``
  and whose next words are ``prefix`` has those words replaced by ``replace_with``,
  in place, leaving the rest of the command line as written::

      {command: pip, prefix: [install], replace_with: [uv, pip, install]}
      # cd app && pip install -r req.txt  ->  cd app && uv pip install -r req.txt
      # sudo pip install x                ->  sudo uv pip install x

  Commands inside ``sh -c '...'`` or backquotes are not rewritten (they are not
  written in the command line itself); ``$(...)`` ones are.
- argument rewrites: ``{tool: Bash, set: {timeout: 60000}}`` sets arguments of a
  tool's calls (JSON arguments only).

A rewritten call goes out as one well-formed tool-call chunk (same id and name, the
arguments in the form they came in) and emits an ``agent_rule`` event with the
arguments before and after. A rule never applies twice to its own output
(``uv pip install`` is not ``pip install``).
"""

from __future__ import annotations

import fnmatch
import json
import shlex
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from luthien_lab.policies._agent_rules import AgentRuleConfig, AgentRulePolicy, Verdict
from luthien_lab.policies._configurable import build_config
from luthien_lab.policies._paths import normalize_path
from luthien_lab.policies._shell import ShellParseError, analyze
from luthien_lab.policies.agent_tools import parse_arguments, tool_actions, with_argument

__all__ = ["RewriteRule", "RewriteRulesPolicy", "rewrite_command"]


class RewriteRule(BaseModel):
    """One rewrite (see the module doc); ``reason`` is recorded with it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    reason: str = ""
    command: list[str] = []
    prefix: list[str] = []
    replace_with: list[str] = []
    tool: list[str] = []
    set: dict[str, Any] = {}

    @field_validator("command", "tool", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_kind(self) -> RewriteRule:
        shell = bool(self.command)
        if shell == bool(self.tool):
            raise ValueError("give either 'command' (+ 'replace_with') or 'tool' (+ 'set')")
        if shell and not self.replace_with:
            raise ValueError("a command rewrite needs 'replace_with' (the new words)")
        if not shell and not self.set:
            raise ValueError("a tool rewrite needs 'set' (the arguments to set)")
        return self


def rewrite_command(
    command: str, rules: list[RewriteRule], cwd: str | None = None
) -> tuple[str, list[str]]:
    """(``command`` with every matching simple command rewritten, names of the rules
    that applied). Raises ``ShellParseError`` when it does not parse."""
    edits: list[tuple[int, int, str, str]] = []
    for cmd in analyze(command, cwd):
        spans = cmd.spans
        if not cmd.argv or spans is None:
            continue
        for rule in rules:
            if not rule.command or not any(fnmatch.fnmatchcase(cmd.name, p) for p in rule.command):
                continue
            size = len(rule.prefix) + 1
            if cmd.argv[1:size] != rule.prefix or any(s is None for s in spans[:size]):
                continue
            start, end = spans[0][0], spans[size - 1][1]  # type: ignore[index]
            if any(start < e and s < end for s, e, _, _ in edits):
                continue  # the same words, reached through a wrapper: once is enough
            edits.append(
                (start, end, " ".join(shlex.quote(w) for w in rule.replace_with), rule.name)
            )
            break
    applied = []
    for start, end, text, name in sorted(edits, reverse=True):
        command = command[:start] + text + command[end:]
        applied.append(name)
    return command, applied[::-1]


class RewriteRulesPolicy(AgentRulePolicy):
    """Rewrites tool-call arguments by rule (see the module doc)."""

    class Config(AgentRuleConfig):
        rules: list[RewriteRule]

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        self.config = build_config(type(self), config, kwargs)
        self._setup()
        self.shell_rules = [r for r in self.config.rules if r.command]
        self.tool_rules = [r for r in self.config.rules if r.tool]

    async def verdict(self, name: str, arguments: str, cwd: str | None) -> Verdict:
        new = arguments
        applied: list[str] = []
        reasons: list[str] = []
        actions = tool_actions(name, arguments, self.tools) if self.shell_rules else None
        for action in actions or []:
            if action.kind != "shell":
                continue
            where = normalize_path(action.workdir, cwd, self.config.home) if action.workdir else cwd
            try:
                command, names = rewrite_command(action.target, self.shell_rules, where)
            except ShellParseError:
                continue
            if names:
                new = with_argument(name, new, command, self.tools)
                applied += names
                reasons.append(f"`{action.target}` -> `{command}`")
        for rule in self.tool_rules:
            if not any(fnmatch.fnmatchcase(name, p) for p in rule.tool):
                continue
            data = parse_arguments(new)
            if data is None or all(data.get(k) == v for k, v in rule.set.items()):
                continue
            new = json.dumps({**data, **rule.set}, ensure_ascii=False)
            applied.append(rule.name)
            reasons.append(f"set {', '.join(sorted(rule.set))}")
        if not applied or new == arguments:
            return Verdict()
        why = "; ".join(r.reason for r in self.config.rules if r.name in applied and r.reason)
        reason = "; ".join(reasons) + (f" ({why})" if why else "")
        return Verdict("rewrite", reason, ",".join(applied), new)
