"""``PathRulesPolicy``: allow or block an agent's file writes and reads by path.

Every path a tool call touches is resolved against the agent's working directory
(from its request, or ``cwd:``; a shell command's own ``cd`` and Codex's ``workdir``
count) and normalised, so ``../`` and ``~`` cannot step around a pattern, then
checked:

- writes (``Write``, ``Edit``, ``MultiEdit``, ``NotebookEdit``, each file of a Codex
  ``apply_patch``, and in shell commands: ``>``/``>>`` targets, ``rm``, ``mv``, ``cp``
  and ``install`` targets, ``touch``, ``mkdir``, ``tee``, ``sed -i``, ``truncate``,
  ``chmod``/``chown``, ``ln``, ``dd of=``, ``apply_patch <<EOF``...): blocked when they
  match ``deny_write``, or when ``allow_write`` is given and they match none of it;
- reads (``Read``, ``Glob``, ``Grep``, ``view_image``, and in shell commands: ``<``
  sources, ``cat``, ``head``, ``tail``, ``less``, ``grep`` files, ``cp`` sources,
  ``source``, ``base64``...): the same with ``deny_read`` / ``allow_read``.

Patterns are globs (``/etc/**``, ``~/.ssh/**``, ``**/.env``, ``{cwd}/**`` for the
working directory; see :mod:`._paths`). The defaults keep secrets unread and the
system and shell start-up files unwritten; ``allow_write: ["{cwd}/**", "/tmp/**"]``
confines writes to the project.
"""

from __future__ import annotations

from typing import Any, Literal

from luthien_lab.policies._agent_rules import AgentRuleConfig, AgentRulePolicy, Verdict
from luthien_lab.policies._configurable import build_config
from luthien_lab.policies._paths import display_path, match_path, normalize_path, pattern_for
from luthien_lab.policies._shell import ShellCommand, ShellParseError, analyze
from luthien_lab.policies.agent_tools import parse_patch, tool_actions
from luthien_lab.policies.shell_rules import positionals

__all__ = ["DEFAULT_DENY_READ", "DEFAULT_DENY_WRITE", "PathRulesPolicy", "shell_file_access"]

DEFAULT_DENY_READ = [
    "~/.ssh/**", "~/.aws/**", "~/.gnupg/**", "~/.config/gcloud/**", "~/.netrc", "~/.docker/config.json",
    "**/.env", "**/.env.*", "/etc/shadow", "/etc/sudoers", "**/*.pem", "**/id_rsa", "**/id_ed25519",
]  # fmt: skip
DEFAULT_DENY_WRITE = [
    "/etc/**", "/usr/**", "/bin/**", "/sbin/**", "/boot/**", "/lib/**", "/var/**", "/System/**",
    "~/.ssh/**", "~/.aws/**", "~/.bashrc", "~/.bash_profile", "~/.zshrc", "~/.profile",
    "~/.gitconfig", "**/.git/hooks/**", "**/.git/config",
]  # fmt: skip

_WRITE_OPS = frozenset({">", ">>", ">|", "&>", "&>>", "<>"})
_WRITES_ALL = frozenset({"rm", "rmdir", "touch", "mkdir", "tee", "truncate", "shred", "unlink"})
_WRITES_LAST = frozenset({"cp", "mv", "install", "ln", "rsync", "scp"})  # the rest are read
_WRITES_AFTER_FIRST = frozenset({"chmod", "chown", "chgrp"})
_READS_ALL = frozenset(
    {"cat", "less", "more", "head", "tail", "nl", "wc", "sort", "uniq", "strings", "xxd", "od",
     "hexdump", "base64", "file", "stat", "source", ".", "diff", "cmp", "md5sum", "sha256sum",
     "bat", "tac", "zcat", "gzip", "tar", "zip"}
)  # fmt: skip
_READS_AFTER_FIRST = frozenset({"grep", "egrep", "fgrep", "rg", "ag", "awk", "jq", "sed"})


def shell_file_access(cmd: ShellCommand) -> list[tuple[Literal["read", "write"], str]]:
    """``[(read|write, path as written)]`` of the files a simple command touches, as
    far as its program is known (see the module doc)."""
    out: list[tuple[Literal["read", "write"], str]] = []
    for op, target in cmd.redirects:
        if op in _WRITE_OPS and target and not target.startswith("&"):
            out.append(("write", target))
        elif op == "<" and target:
            out.append(("read", target))
    name, argv = cmd.name, cmd.argv
    words = [w for w in positionals(argv) if "://" not in w]
    if name == "dd":
        for word in argv[1:]:
            key, _, value = word.partition("=")
            if key in ("of", "if") and value:
                out.append(("write" if key == "of" else "read", value))
    elif name == "apply_patch" and cmd.stdin:
        out += [("write", path) for _kind, path in parse_patch(cmd.stdin)]
    elif name in _WRITES_ALL:
        out += [("write", w) for w in words]
    elif name in _WRITES_LAST and len(words) >= 2:
        out += [("read", w) for w in words[:-1] if ":" not in w]
        if ":" not in words[-1]:
            out.append(("write", words[-1]))
    elif name in _WRITES_AFTER_FIRST:
        out += [("write", w) for w in words[1:]]
    elif name == "sed":
        inplace = any(w == "-i" or w.startswith(("-i", "--in-place")) for w in argv[1:])
        files = words[1:] if not any(w in ("-e", "-f") for w in argv) else words
        out += [("write" if inplace else "read", w) for w in files]
    elif name in _READS_ALL:
        out += [("read", w) for w in words]
    elif name in _READS_AFTER_FIRST:
        explicit = any(w in ("-e", "-f", "--regexp", "--file") for w in argv)
        out += [("read", w) for w in (words if explicit else words[1:])]
    return out


class PathRulesPolicy(AgentRulePolicy):
    """Blocks tool calls that write or read paths outside the rules (module doc)."""

    class Config(AgentRuleConfig):
        deny_write: list[str] = DEFAULT_DENY_WRITE
        deny_read: list[str] = DEFAULT_DENY_READ
        allow_write: list[str] | None = None
        allow_read: list[str] | None = None
        check_shell: bool = True
        on_parse_error: Literal["block", "allow"] = "block"

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        self.config = build_config(type(self), config, kwargs)
        self._setup()

    def check_path(
        self, mode: Literal["read", "write"], path: str, cwd: str | None, base: str | None = None
    ) -> str | None:
        """Why ``path`` may not be read/written (``base``: where a relative path starts,
        default ``cwd``), or None."""
        cfg = self.config
        home = cfg.home
        resolved = normalize_path(path, base or cwd, home)
        deny, allow = (
            (cfg.deny_write, cfg.allow_write)
            if mode == "write"
            else (cfg.deny_read, cfg.allow_read)
        )
        shown = display_path(resolved)
        hit = match_path(resolved, [pattern_for(p, cwd, home) for p in deny])
        if hit is not None:
            return f"{mode} of {shown} is denied (matches {display_path(hit)})"
        if (
            allow is not None
            and match_path(resolved, [pattern_for(p, cwd, home) for p in allow]) is None
        ):
            return f"{mode} of {shown} is outside the allowed paths ({', '.join(allow)})"
        return None

    async def verdict(self, name: str, arguments: str, cwd: str | None) -> Verdict:
        actions = tool_actions(name, arguments, self.tools)
        if actions is None:
            spec = self.tools.get(name)
            if (
                spec is None
                or spec.kind in ("fetch", "search")
                or self.config.on_parse_error == "allow"
            ):
                return Verdict()
            return Verdict("block", "its arguments could not be read", "parse-error")
        for action in actions:
            base = normalize_path(action.workdir, cwd, self.config.home) if action.workdir else cwd
            if action.kind in ("write", "edit", "delete"):
                reason = self.check_path("write", action.target, cwd, base)
            elif action.kind == "read":
                reason = self.check_path("read", action.target, cwd, base)
            elif action.kind == "shell" and self.config.check_shell:
                reason = self._check_shell(action.target, cwd, base)
            else:
                reason = None
            if reason is not None:
                rule = "parse-error" if reason.startswith("the command") else f"{action.kind}-path"
                return Verdict("block", reason, rule)
        return Verdict()

    def _check_shell(self, command: str, cwd: str | None, base: str | None) -> str | None:
        try:
            commands = analyze(command, base, home=self.config.home)
        except ShellParseError as error:
            if self.config.on_parse_error == "allow":
                return None
            return f"the command could not be parsed ({error})"
        for cmd in commands:
            for mode, path in shell_file_access(cmd):
                reason = self.check_path(mode, path, cwd, cmd.cwd)
                if reason is not None:
                    where = f" (via {cmd.via})" if cmd.via else ""
                    return f"{reason}: `{cmd.text}`{where}"
        return None
