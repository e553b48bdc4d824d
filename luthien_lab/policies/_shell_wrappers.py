"""Commands that run other commands: what they run, for :mod:`._shell`.

- ``script_of``: the script of ``sh -c``/``bash -lc``..., of a shell reading stdin,
  of ``eval``, ``watch``, ``su -c``, ``ssh host command``;
- ``unwrap``: the command behind ``sudo``, ``env``, ``nohup``, ``nice``, ``timeout``,
  ``time``, ``command``, ``exec``, ``stdbuf``, ``setsid``, ``chroot``, ``busybox``,
  ``flock``, ``strace``, ``xargs`` (plus the words piped into it) and ``find -exec``
  (``{}`` replaced by find's paths);
- ``echoed``/``substituted``: what ``echo``/``printf``/``cat <<EOF``/``pwd`` write,
  for ``echo 'rm -rf /' | sh`` and ``rm -rf $(echo /)``.
"""

from __future__ import annotations

import posixpath

from luthien_lab.policies._shell_lex import Command, Script

__all__ = ["SHELLS", "echoed", "script_of", "substituted", "unwrap"]

SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish", "csh", "tcsh"})

# Wrappers: the command they run starts after their options. Each maps to the options
# that take a value (so the value is not mistaken for the command).
_WRAPPERS: dict[str, frozenset[str]] = {
    "sudo": frozenset({"-u", "-g", "-p", "-U", "-C", "-D", "-r", "-t", "-h", "-T"}),
    "doas": frozenset({"-u", "-C"}),
    "env": frozenset({"-u", "-C", "-S", "--unset", "--chdir"}),
    "nohup": frozenset(),
    "nice": frozenset({"-n", "--adjustment"}),
    "ionice": frozenset({"-c", "-n", "-p"}),
    "timeout": frozenset({"-s", "-k", "--signal", "--kill-after"}),
    "time": frozenset({"-f", "-o"}),
    "command": frozenset(),
    "builtin": frozenset(),
    "exec": frozenset({"-a"}),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
    "setsid": frozenset(),
    "unbuffer": frozenset(),
    "busybox": frozenset(),
    "chroot": frozenset(),
    "flock": frozenset({"-w", "-E", "--timeout"}),
    "strace": frozenset({"-e", "-o", "-p", "-s", "-u"}),
    "caffeinate": frozenset({"-t", "-w"}),
}
_POSITIONAL_BEFORE = {"timeout": 1, "chroot": 1, "flock": 1}  # words before the command
_XARGS_VALUE = frozenset({"-I", "-i", "-n", "-P", "-d", "-L", "-s", "-E", "-a", "--max-args"})
_SSH_VALUE = frozenset("bcDEeFIiJLlmOoPpQRSWw")


def substituted(script: Script, cwd: str | None) -> str | None:
    """The output of a ``$(...)`` that is a plain ``echo``/``printf``/``pwd``, else None."""
    if len(script.items) != 1 or not isinstance(script.items[0], Command):
        return None
    words = [w.literal() for w in script.items[0].words]
    if not words or any(w is None for w in words):
        return None
    argv = [w for w in words if w is not None]
    if argv == ["pwd"]:
        return cwd
    out = echoed(argv, None)
    return out.rstrip("\n") if out is not None else None


def echoed(argv: list[str], stdin: str | None) -> str | None:
    """What ``echo``/``printf``/``cat`` (of a here-document) writes, roughly (for
    ``echo 'rm -rf /' | sh``)."""
    if not argv:
        return None
    name = posixpath.basename(argv[0])
    if name == "cat" and len(argv) == 1:
        return stdin
    words = [a for a in argv[1:] if not (a.startswith("-") and len(a) <= 3)]
    if name == "echo":
        return " ".join(words) + "\n"
    if name == "printf" and words:
        return " ".join(words[1:] if "%" in words[0] else words) + "\n"
    return None


def script_of(name: str, argv: list[str], stdin: str | None) -> str | None:
    """The script a shell-like command runs, when it is written in the command."""
    args = argv[1:]
    if name == "eval":
        return " ".join(args)
    if name == "watch":
        rest = _after_options(args, frozenset({"-n", "-d", "--interval"}))
        return " ".join(rest) if rest else None
    if name in ("su", "runuser"):
        for i, arg in enumerate(args):
            if arg in ("-c", "--command") and i + 1 < len(args):
                return args[i + 1]
        return None
    if name == "ssh":
        i = 0
        while i < len(args) and args[i].startswith("-"):
            flag = args[i]
            i += 2 if len(flag) == 2 and flag[1] in _SSH_VALUE else 1
        rest = args[i + 1 :]  # args[i] is the host
        return " ".join(rest) if rest else None
    command_flag = False
    for arg in args:
        if arg == "--":
            continue
        if arg.startswith("-") and not arg.startswith("--") and len(arg) > 1:
            command_flag = command_flag or "c" in arg[1:]
            continue
        if arg.startswith("--"):
            continue
        if arg.startswith("+"):
            continue
        return arg if command_flag else None  # the -c script, or a script file (unknown)
    return stdin  # no script argument: the shell reads stdin


def _after_options(args: list[str], valued: frozenset[str]) -> list[str]:
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "-":
        if args[i] == "--":
            return args[i + 1 :]
        i += 2 if args[i] in valued else 1
    return args[i:]


def unwrap(argv: list[str], stdin: str | None = None) -> tuple[list[str], int, str] | None:
    """(the command a wrapper runs, where it starts in ``argv`` (-1: rebuilt), how)."""
    name = posixpath.basename(argv[0])
    args = argv[1:]
    if name in _WRAPPERS:
        valued = _WRAPPERS[name]
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                i += 1
                break
            if name == "env" and "=" in arg and not arg.startswith("-"):
                i += 1
                continue
            if not arg.startswith("-") or arg == "-":
                break
            i += 2 if arg in valued else 1
        i += _POSITIONAL_BEFORE.get(name, 0)
        if i >= len(args):
            return None
        return args[i:], i + 1, name
    if name == "xargs":
        i, replace = 0, None
        while i < len(args) and args[i].startswith("-"):
            if args[i] in ("-I", "-i") and i + 1 < len(args):
                replace = args[i + 1]
            i += 2 if args[i] in _XARGS_VALUE else 1
        inner = args[i:] or ["echo"]
        words = (stdin or "").split()
        if replace:
            return [w.replace(replace, " ".join(words)) for w in inner], -1, "xargs"
        start = i + 1 if not words and args[i:] else -1
        return inner + words, start, "xargs"
    if name == "find":
        paths = []
        for arg in args:
            if arg.startswith(("-", "(", "!")):
                break
            paths.append(arg)
        for i, arg in enumerate(args):
            if arg in ("-exec", "-execdir", "-ok", "-okdir"):
                end = next((j for j in range(i + 1, len(args)) if args[j] in (";", "+")), len(args))
                inner = args[i + 1 : end]
                if inner:
                    spot = " ".join(paths or ["."])
                    return [w.replace("{}", spot) for w in inner], -1, f"find {arg}"
    return None
