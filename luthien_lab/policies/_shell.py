"""Every simple command a shell script would run, with what it runs on.

:func:`analyze` walks a parsed script (:mod:`._shell_lex`) in order, keeping what a
shell would know at each point: the working directory (``cd``/``pushd``, scoped to
``( ... )`` and pipelines), variables (``X=/; rm -rf $X``, ``${X:-/}``, ``export``),
and it looks through what runs another command:

- ``sh``/``bash``/``zsh``/... ``-c 'script'`` (``-lc``, ``-ec``...), or a shell reading
  its script from a here-document, a here-string or ``echo ... |``;
- ``eval``, ``watch``, ``su -c``, ``ssh host 'command'``;
- ``sudo``, ``doas``, ``env``, ``nohup``, ``nice``, ``timeout``, ``time``, ``command``,
  ``exec``, ``xargs`` (with the words ``echo``/``printf`` pipe into it), ``find -exec``
  (with ``{}`` replaced by find's paths), ``busybox``, ``stdbuf``, ``setsid``, ``chroot``;
- ``$(...)``, backquotes and ``<(...)`` anywhere in a word.

Each :class:`ShellCommand` found says how it was reached (``via``), its pipeline
neighbours (``piped_to``), its redirections and what it reads on stdin when that is
written in the script. Words keep their source spans when the command is written in
the script's own text, for rewriting.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass, field

from luthien_lab.policies._paths import normalize_path
from luthien_lab.policies._shell_lex import MAX_DEPTH, Command, ShellParseError, Subshell, Word
from luthien_lab.policies._shell_parse import parse as parse_script
from luthien_lab.policies._shell_wrappers import SHELLS, echoed, script_of, substituted, unwrap

__all__ = ["SHELLS", "ShellCommand", "ShellParseError", "analyze"]

MAX_COMMANDS = 500
_NEEDS_QUOTES = re.compile(r"[\s'\"\\;&|<>()$`]")
_BRACE = re.compile(r"\{([^{}]*,[^{}]*)\}")


@dataclass
class ShellCommand:
    """One simple command the script would run (see the module doc)."""

    argv: list[str]
    cwd: str | None = None
    redirects: list[tuple[str, str]] = field(default_factory=list)
    stdin: str | None = None
    piped_to: tuple[str, ...] = ()
    via: str = ""
    depth: int = 0
    spans: list[tuple[int, int] | None] | None = None  # per argv word, in the top source
    env: dict[str, str] = field(default_factory=dict, repr=False)  # variables it sees

    @property
    def name(self) -> str:
        return posixpath.basename(self.argv[0]) if self.argv else ""

    @property
    def text(self) -> str:
        """The command as a person reads it (words with blanks or quotes quoted), with
        its redirections."""
        words = [shlex.quote(w) if _NEEDS_QUOTES.search(w) or not w else w for w in self.argv]
        words += [f"{op} {target}" for op, target in self.redirects if op not in ("<<", "<<-")]
        return " ".join(words)


@dataclass
class _State:
    cwd: str | None
    env: dict[str, str]
    home: str | None

    def copy(self) -> _State:
        return _State(self.cwd, dict(self.env), self.home)


class _Walker:
    def __init__(self, home: str | None) -> None:
        self.out: list[ShellCommand] = []
        self.home = home

    # -- words ----------------------------------------------------------------------
    @staticmethod
    def word_text(word: Word, env: dict[str, str], cwd: str | None = None) -> str:
        parts = []
        for part in word.parts:
            if part[0] == "lit":
                parts.append(part[1])
            elif part[0] == "sub":
                parts.append(substituted(word.subs[int(part[2])], cwd) or part[1])
            elif part[0] == "var":
                name, default, raw = part[1], part[2], part[3]
                value = env.get(name)
                if value is None and name == "HOME":
                    value = "~"
                if value is None:
                    value = default if default is not None else raw
                parts.append(value)
            else:
                parts.append(part[1])
        return "".join(parts)

    def expand(self, word: Word, env: dict[str, str], cwd: str | None) -> list[str]:
        text = self.word_text(word, env, cwd)
        if word.quoted or "{" not in text:
            return [text]
        out = [text]
        for _ in range(4):  # nested braces, a few levels
            grown: list[str] = []
            for item in out:
                match = _BRACE.search(item)
                if match is None:
                    grown.append(item)
                    continue
                for choice in match.group(1).split(","):
                    grown.append(item[: match.start()] + choice + item[match.end() :])
            if grown == out or len(grown) > 64:
                break
            out = grown
        return out

    # -- the script -----------------------------------------------------------------
    def walk(
        self, items: list[Command | Subshell], state: _State, depth: int, via: str, base: int | None
    ) -> None:
        pipeline: list[tuple[list[str], list[tuple[int, int] | None], dict[str, str], Command]] = []
        for item in items:
            if isinstance(item, Subshell):
                self.walk(item.items, state.copy(), depth, via, base)
                continue
            argv, spans, env = self.words_of(item, state, depth, via, base)
            pipeline.append((argv, spans, env, item))
            if item.pipe:
                continue
            self.pipeline(pipeline, state, depth, via)
            pipeline = []
        if pipeline:
            self.pipeline(pipeline, state, depth, via)

    def words_of(
        self, cmd: Command, state: _State, depth: int, via: str, base: int | None
    ) -> tuple[list[str], list[tuple[int, int] | None], dict[str, str]]:
        env = state.env
        local = dict(env) if cmd.words else env
        for name, value in cmd.assigns:
            local[name] = self.word_text(value, env, state.cwd)
        argv: list[str] = []
        spans: list[tuple[int, int] | None] = []
        for word in [*cmd.words, *(r.target for r in cmd.redirects if r.target is not None)]:
            for sub in word.subs:
                sub_base = None if base is None or sub.offset < 0 else base + sub.offset
                self.walk(sub.items, state.copy(), depth + 1, _join(via, "$(...)"), sub_base)
        for word in cmd.words:
            expanded = self.expand(word, local, state.cwd)
            argv.extend(expanded)
            span = (base + word.start, base + word.end) if base is not None else None
            spans.extend([span] if len(expanded) == 1 else [None] * len(expanded))
        for _name, value in cmd.assigns:
            for sub in value.subs:
                self.walk(sub.items, state.copy(), depth + 1, _join(via, "$(...)"), None)
        return argv, spans, local

    def pipeline(
        self,
        items: list[tuple[list[str], list[tuple[int, int] | None], dict[str, str], Command]],
        state: _State,
        depth: int,
        via: str,
    ) -> None:
        names = [self.effective_names(argv) for argv, _, _, _ in items]
        previous: list[str] | None = None
        previous_stdin: str | None = None
        for position, (argv, spans, env, cmd) in enumerate(items):
            redirects = []
            stdin: str | None = None
            for r in cmd.redirects:
                target = self.word_text(r.target, env, state.cwd) if r.target is not None else ""
                redirects.append((r.op, target))
                if r.body is not None:
                    stdin = r.body
            if stdin is None and previous is not None:
                stdin = echoed(previous, previous_stdin)
            later = tuple(name for group in names[position + 1 :] for name in group)
            if not argv:
                if len(items) == 1:
                    for name, value in cmd.assigns:
                        state.env[name] = self.word_text(value, state.env, state.cwd)
                if redirects:
                    self.add(
                        ShellCommand([], state.cwd, redirects, stdin, later, via, depth, [], env)
                    )
                previous, previous_stdin = argv, stdin
                continue
            command = ShellCommand(argv, state.cwd, redirects, stdin, later, via, depth, spans, env)
            self.emit(command, state, depth)
            if len(items) == 1:
                self.builtin(argv, state)
            previous, previous_stdin = argv, stdin

    def effective_names(self, argv: list[str]) -> list[str]:
        names = []
        while argv:
            names.append(posixpath.basename(argv[0]))
            inner = unwrap(argv)
            if inner is None:
                break
            argv = inner[0]
        return names

    def builtin(self, argv: list[str], state: _State) -> None:
        name = argv[0]
        if name in ("cd", "pushd"):
            target = next((a for a in argv[1:] if not a.startswith("-") or a == "-"), "~")
            if target == "-" or "$" in target:
                state.cwd = None
            else:
                state.cwd = normalize_path(target, state.cwd, self.home)
        elif name == "popd":
            state.cwd = None
        elif name in ("export", "declare", "typeset", "local", "readonly"):
            for arg in argv[1:]:
                key, eq, value = arg.partition("=")
                if eq and key.isidentifier():
                    state.env[key] = value

    # -- looking through commands that run commands ---------------------------------
    def add(self, command: ShellCommand) -> None:
        if len(self.out) >= MAX_COMMANDS:
            raise ShellParseError(f"more than {MAX_COMMANDS} commands")
        self.out.append(command)

    def emit(self, command: ShellCommand, state: _State, depth: int) -> None:
        self.add(command)
        argv, name = command.argv, command.name
        if name in SHELLS or name == "eval" or name in ("watch", "su", "runuser", "ssh"):
            script = script_of(name, argv, command.stdin)
            if script is not None:
                how = f"{name} -c" if name in SHELLS or name in ("su", "runuser") else name
                inner = _State(command.cwd, dict(command.env), self.home)
                self.nested(script, inner, depth, _join(command.via, how))
            return
        unwrapped = unwrap(argv, command.stdin)
        if unwrapped is None:
            return
        inner_argv, start, how = unwrapped
        spans = command.spans[start:] if command.spans is not None and start >= 0 else None
        if spans is not None and len(spans) != len(inner_argv):
            spans = None
        wrapped = ShellCommand(
            inner_argv,
            command.cwd,
            command.redirects,
            command.stdin,
            command.piped_to,
            _join(command.via, how),
            depth,
            spans,
            command.env,
        )
        self.emit(wrapped, state, depth)

    def nested(self, script: str, state: _State, depth: int, via: str) -> None:
        if depth + 1 > MAX_DEPTH:
            raise ShellParseError(f"commands nested deeper than {MAX_DEPTH} levels")
        parsed = parse_script(script, depth + 1)
        self.walk(parsed.items, state, depth + 1, via, None)


def _join(via: str, how: str) -> str:
    return f"{via} > {how}" if via else how


def analyze(
    script: str,
    cwd: str | None = None,
    *,
    home: str | None = None,
    env: dict[str, str] | None = None,
) -> list[ShellCommand]:
    """Every simple command ``script`` would run, roughly in the order it would run
    them (a ``$(...)`` before its command, a ``bash -c`` script after it). Raises :class:`ShellParseError` for a script that is not
    complete shell (an unterminated quote...). ``cwd``: where it starts (None:
    unknown); ``home``: the home directory, when known."""
    parsed = parse_script(script)
    walker = _Walker(home)
    walker.walk(parsed.items, _State(cwd, dict(env or {}), home), 0, "", 0)
    return walker.out
