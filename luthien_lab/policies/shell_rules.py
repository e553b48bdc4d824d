"""``ShellRulesPolicy``: block agent shell commands by rule, with a real shell parser.

The command of every shell tool call (Claude Code's ``Bash``, Codex's ``exec_command``
and ``shell``, ``write_stdin``; see :mod:`.agent_tools`) is parsed
(:mod:`._shell`): every simple command it would run is checked, wherever it hides
(``&&``, ``||``, ``;``, ``|``, ``$(...)``, backquotes, ``sh -c '...'``, ``eval``,
``sudo``, ``xargs``, ``find -exec``, here-documents, line continuations, variables),
with its paths resolved against the working directory it would run in.

A rule matches a simple command when all the conditions it gives hold:

- ``command``: the program's name (globs: ``mkfs*``);
- ``subcommand``: its first positional words (``[push]`` for ``git push``);
- ``flags``: each entry ``"-r|-R|--recursive"`` names alternatives, one of which must
  be present (``-rf`` counts as ``-r`` and ``-f``);
- ``args``: some word matches one of these globs (``of=/dev/sd*``);
- ``paths``: some positional argument, resolved (``~``, ``..``, ``cd``), matches one
  of these path globs (``{cwd}`` is the agent's working directory);
- ``regex``: searched in the command's text;
- ``piped_to``: a later command of its pipeline is one of these (``curl ... | sh``);
- ``redirect_to``: it writes (``>``, ``>>``) to a path matching one of these globs.

:data:`DEFAULT_SHELL_RULES` (on unless ``default_rules: false``) blocks recursive
deletes of ``/``, ``~``, system directories or the working directory itself,
``mkfs``, ``dd`` onto a device, ``chmod``/``chown -R`` on ``/``, piping a download
into a shell, force-pushes, shutdown/reboot and writing to a disk device.
``deny_commands`` blocks programs by name, ``allow_commands`` (when given) blocks
every program not listed. A command that cannot be parsed (an unterminated quote) is
blocked unless ``on_parse_error: allow``.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from luthien_lab.policies._agent_rules import AgentRuleConfig, AgentRulePolicy, Verdict
from luthien_lab.policies._configurable import build_config
from luthien_lab.policies._paths import match_path, normalize_path, pattern_for
from luthien_lab.policies._shell import ShellCommand, ShellParseError, analyze
from luthien_lab.policies.agent_tools import tool_actions

__all__ = ["DEFAULT_SHELL_RULES", "ShellRule", "ShellRulesPolicy", "flags_of", "positionals"]

_SYSTEM = [
    "/", "~", "/etc/**", "/usr", "/usr/*", "/var", "/bin", "/sbin",
    "/lib", "/lib64", "/boot/**", "/opt", "/home", "/home/*", "/root", "/Users", "/Users/*",
    "/dev/**", "/proc", "/sys", "/System/**",
]  # fmt: skip
_CRITICAL = [*_SYSTEM, "{cwd}"]

DEFAULT_SHELL_RULES: list[dict[str, Any]] = [
    {"name": "recursive-delete", "command": ["rm"], "flags": ["-r|-R|--recursive"],
     "paths": _CRITICAL, "reason": "recursive delete of a system, home or project root directory"},
    {"name": "find-delete", "command": ["find"], "args": ["-delete"], "paths": _SYSTEM,
     "reason": "find -delete over a system or home directory"},
    {"name": "mkfs", "command": ["mkfs", "mkfs.*", "mke2fs", "wipefs"],
     "reason": "formats a disk"},
    {"name": "dd-device", "command": ["dd"], "args": ["of=/dev/*"],
     "reason": "writes raw data onto a device"},
    {"name": "recursive-permissions", "command": ["chmod", "chown", "chgrp"],
     "flags": ["-R|--recursive"], "paths": _CRITICAL,
     "reason": "changes permissions of a whole system, home or project tree"},
    {"name": "pipe-to-shell", "command": ["curl", "wget"],
     "piped_to": ["sh", "bash", "zsh", "dash", "ksh", "fish", "python*", "perl", "ruby", "node"],
     "reason": "runs a script straight from the network"},
    {"name": "force-push", "command": ["git"], "subcommand": ["push"],
     "flags": ["-f|--force|--force-with-lease|--mirror"], "reason": "force-pushes, rewriting shared history"},
    {"name": "power", "command": ["shutdown", "reboot", "halt", "poweroff"],
     "reason": "shuts the machine down"},
    {"name": "disk-write", "redirect_to": ["/dev/sd*", "/dev/nvme*", "/dev/hd*", "/dev/disk*"],
     "reason": "writes onto a disk device"},
    {"name": "fork-bomb", "regex": r":\(\)\s*\{", "reason": "a fork bomb"},
]  # fmt: skip

_WRITE_OPS = frozenset({">", ">>", ">|", "&>", "&>>", "<>"})


def flags_of(argv: list[str]) -> set[str]:
    """The flags of a command: ``-rf`` gives ``-rf``, ``-r`` and ``-f``;
    ``--force=yes`` gives ``--force``. Nothing after ``--``."""
    flags: set[str] = set()
    for word in argv[1:]:
        if word == "--":
            break
        if word.startswith("--"):
            flags.add(word.split("=", 1)[0])
        elif word.startswith("-") and len(word) > 1:
            flags.add(word)
            flags.update(f"-{c}" for c in word[1:] if c.isalnum())
    return flags


def positionals(argv: list[str]) -> list[str]:
    """The words of a command that are not flags (all of them after ``--``)."""
    out, rest = [], False
    for word in argv[1:]:
        if rest or not word.startswith("-") or word == "-":
            out.append(word)
        elif word == "--":
            rest = True
    return out


class ShellRule(BaseModel):
    """One rule (see the module doc). ``reason`` is what the agent is told."""

    model_config = ConfigDict(extra="forbid")

    name: str
    reason: str
    command: list[str] = []
    subcommand: list[str] = []
    flags: list[str] = []
    args: list[str] = []
    paths: list[str] = []
    regex: str | None = None
    piped_to: list[str] = []
    redirect_to: list[str] = []

    @field_validator("command", "piped_to", "args", "paths", "redirect_to", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("regex")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"invalid regex {value!r}: {error}") from None
        return value

    def matches(self, cmd: ShellCommand, cwd: str | None, home: str | None) -> bool:
        name = cmd.name
        if not cmd.argv and (self.command or self.subcommand or self.flags or self.args):
            return False
        if self.command and not any(fnmatch.fnmatchcase(name, p) for p in self.command):
            return False
        words = positionals(cmd.argv)
        if self.subcommand and words[: len(self.subcommand)] != self.subcommand:
            return False
        if self.flags:
            present = flags_of(cmd.argv)
            if not all(present & set(group.split("|")) for group in self.flags):
                return False
        if self.args and not any(
            fnmatch.fnmatchcase(w, p) for w in cmd.argv[1:] for p in self.args
        ):
            return False
        if self.paths:
            patterns = [pattern_for(p, cwd, home) for p in self.paths]
            resolved = [normalize_path(w, cmd.cwd, home) for w in words if w]
            if not any(match_path(p, patterns) for p in resolved):
                return False
        if self.regex is not None and not re.search(self.regex, cmd.text):
            return False
        if self.piped_to and not any(
            fnmatch.fnmatchcase(n, p) for n in cmd.piped_to for p in self.piped_to
        ):
            return False
        if self.redirect_to:
            patterns = [pattern_for(p, cwd, home) for p in self.redirect_to]
            targets = [
                normalize_path(t, cmd.cwd, home) for op, t in cmd.redirects if op in _WRITE_OPS
            ]
            if not any(match_path(t, patterns) for t in targets):
                return False
        return True


class ShellRulesPolicy(AgentRulePolicy):
    """Blocks shell tool calls whose commands match a rule (see the module doc)."""

    class Config(AgentRuleConfig):
        rules: list[ShellRule] = []
        default_rules: bool = True
        deny_commands: list[str] = []
        allow_commands: list[str] | None = None
        on_parse_error: Literal["block", "allow"] = "block"

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        self.config = build_config(type(self), config, kwargs)
        self._setup()
        cfg = self.config
        rules = (
            [ShellRule.model_validate(r) for r in DEFAULT_SHELL_RULES] if cfg.default_rules else []
        )
        rules += list(cfg.rules)
        for command in cfg.deny_commands:
            rules.append(
                ShellRule(
                    name=f"deny {command}", command=[command], reason=f"{command} is not allowed"
                )
            )
        self.rules = rules

    def check_command(self, command: str, cwd: str | None, project: str | None = None) -> Verdict:
        """The verdict for one shell command line run in ``cwd``; ``project``: the
        agent's working directory, what ``{cwd}`` in a rule means (default ``cwd``)."""
        home = self.config.home
        project = project or cwd
        try:
            commands = analyze(command, cwd, home=home)
        except ShellParseError as error:
            if self.config.on_parse_error == "allow":
                return Verdict()
            return Verdict("block", f"the command could not be parsed ({error})", "parse-error")
        allowed = self.config.allow_commands
        for cmd in commands:
            where = f" (via {cmd.via})" if cmd.via else ""
            if (
                allowed is not None
                and cmd.argv
                and not any(fnmatch.fnmatchcase(cmd.name, p) for p in allowed)
            ):
                return Verdict(
                    "block",
                    f"{cmd.name} is not an allowed command: `{cmd.text}`{where}",
                    "allow-list",
                )
            for rule in self.rules:
                if rule.matches(cmd, project, home):
                    return Verdict("block", f"{rule.reason}: `{cmd.text}`{where}", rule.name)
        for rule in self.rules:
            whole = rule.model_fields_set <= {"name", "reason", "regex"}
            if whole and rule.regex is not None and re.search(rule.regex, command):
                return Verdict("block", f"{rule.reason}: `{command.strip()}`", rule.name)
        return Verdict()

    async def verdict(self, name: str, arguments: str, cwd: str | None) -> Verdict:
        actions = tool_actions(name, arguments, self.tools)
        if actions is None:
            spec = self.tools.get(name)
            if spec is not None and spec.kind == "shell":
                if self.config.on_parse_error == "allow":
                    return Verdict()
                return Verdict("block", "its arguments could not be read", "parse-error")
            return Verdict()
        for action in actions:
            if action.kind != "shell":
                continue
            where = normalize_path(action.workdir, cwd, self.config.home) if action.workdir else cwd
            verdict = self.check_command(action.target, where, cwd)
            if verdict.decision != "allow":
                return verdict
        return Verdict()
