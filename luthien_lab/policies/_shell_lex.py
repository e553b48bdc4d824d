"""A small POSIX/bash shell lexer for policies: words, quoting, operators, nesting
(the parser that groups its tokens into commands is :mod:`._shell_parse`).

It parses what an agent sends to its shell tool well enough to find every *simple
command* in it, wherever it hides: after ``&&``, ``||``, ``;``, ``&``, ``|`` or a
newline, inside ``( ... )``, ``{ ...; }``, ``if``/``for``/``while``/``case`` bodies,
inside ``$(...)``, backticks and ``<(...)``, behind line continuations. Quoting is
bash's: ``'...'``, ``"..."`` (with ``\\``-escapes and expansions), ``$'...'`` (ANSI-C
escapes), ``\\x``. Here-documents (``<<EOF``, ``<<-EOF``, ``<<'EOF'``) and here-strings
(``<<<``) keep their bodies, so that ``bash <<EOF`` can be parsed in turn.

Words are kept as parts (literal text, ``$NAME``/``${NAME:-default}`` expansions,
substitutions) and expanded later against the variables known at that point of the
script (:mod:`luthien_lab.policies._shell`), with their source spans, so that a
rewrite can replace exactly one command's words. It never runs anything.

Not a full bash grammar: it is lenient where leniency can only find more commands
(a ``case`` pattern may be seen as a command word), and strict where a guess could
hide one: an unterminated quote or substitution raises :class:`ShellParseError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Command", "Lexer", "Redirect", "Script", "ShellParseError", "Subshell", "Word"]

MAX_DEPTH = 8
_META = frozenset(" \t\n;&|<>()")
_RESERVED_SKIP = frozenset(
    {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "{", "}", "!", "time",
     "esac", "coproc", "[[", "]]"}
)  # fmt: skip
_OPERATORS = (
    "&>>", ";;&", "<<<", "<<-", "&&", "||", ";;", ";&", "|&", ">>", "<<", "<&", ">&", "<>",
    ">|", "&>", ";", "&", "|", "<", ">", "(", ")", "\n",
)  # fmt: skip
_ANSI = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b",
         "f": "\f", "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}  # fmt: skip


_HEX = frozenset("0123456789abcdefABCDEF")
_OCT = frozenset("01234567")


class ShellParseError(ValueError):
    """The text is not a complete shell script (unterminated quote, substitution...)."""


@dataclass(slots=True)
class Word:
    """One shell word. ``parts``: ``("lit", text)``, ``("var", name, default, raw)``,
    ``("sub", raw, index into subs)`` (a command substitution) or ``("raw", text)``
    (arithmetic, a process substitution), kept as written.
    ``start``/``end``: its span in the source it was parsed from."""

    parts: list[tuple[Any, ...]]
    start: int
    end: int
    quoted: bool = False
    subs: list[Script] = field(default_factory=list)
    heredoc: str | None = None  # the body, when this word is a here-document delimiter

    def literal(self) -> str | None:
        """The word's text when it holds no expansion, else None."""
        if all(p[0] == "lit" for p in self.parts):
            return "".join(p[1] for p in self.parts)
        return None


@dataclass(slots=True)
class Redirect:
    op: str
    target: Word | None
    fd: str = ""
    body: str | None = None  # here-document body


@dataclass(slots=True)
class Command:
    """A simple command: ``assigns`` (``NAME=value`` before it), its words and
    redirections; ``pipe`` when its output goes to the next command."""

    words: list[Word] = field(default_factory=list)
    assigns: list[tuple[str, Word]] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)
    pipe: bool = False
    start: int = -1
    end: int = -1


@dataclass(slots=True)
class Subshell:
    """``( ... )``: changes of directory and variables inside do not leak out."""

    items: list[Command | Subshell]
    pipe: bool = False


@dataclass(slots=True)
class Script:
    source: str
    items: list[Command | Subshell]
    offset: int = 0  # where ``source`` starts in its parent's source (-1: not a slice of it)


# ------------------------------------------------------------------------------------
# lexing
# ------------------------------------------------------------------------------------
class Lexer:
    """``parse``: how a command substitution's text is parsed (the parser's own entry,
    handed in: the parser builds lexers, so the lexer does not import it back)."""

    def __init__(self, src: str, depth: int, parse: Callable[[str, int, int], Script]) -> None:
        if depth > MAX_DEPTH:
            raise ShellParseError(f"shell nesting deeper than {MAX_DEPTH} levels")
        self.src = src
        self.depth = depth
        self.parse = parse
        self.i = 0
        self.tokens: list[Word | tuple[str, int]] = []
        self.pending: list[tuple[str, Word]] = []  # here-documents waiting for their body

    def run(self) -> list[Word | tuple[str, int]]:
        src, n = self.src, len(self.src)
        while self.i < n:
            c = src[self.i]
            if c in " \t":
                self.i += 1
            elif c == "\\" and src.startswith("\\\n", self.i):
                self.i += 2
            elif c == "#":
                end = src.find("\n", self.i)
                self.i = n if end < 0 else end
            elif c in _META and not (c in "<>" and src.startswith("(", self.i + 1)):
                self._operator()
            else:
                self.tokens.append(self._word())
        for _op, word in self.pending:
            word.heredoc = ""  # no newline after the here-document: its body is empty
        return self.tokens

    def _operator(self) -> None:
        src = self.src
        for op in _OPERATORS:
            if src.startswith(op, self.i):
                start = self.i
                self.i += len(op)
                self.tokens.append((op, start))
                if op == "\n":
                    self._read_heredocs()
                elif op in ("<<", "<<-"):
                    while self.i < len(src) and src[self.i] in " \t":
                        self.i += 1
                    if self.i < len(src) and src[self.i] not in _META:
                        delimiter = self._word()
                        self.tokens.append(delimiter)
                        self.pending.append((op, delimiter))
                return
        raise ShellParseError(f"unexpected character {src[self.i]!r} at {self.i}")

    def _read_heredocs(self) -> None:
        src = self.src
        for op, word in self.pending:
            delimiter = "".join(p[1] if p[0] == "lit" else p[-1] for p in word.parts)
            lines: list[str] = []
            while self.i < len(src):
                end = src.find("\n", self.i)
                line = src[self.i :] if end < 0 else src[self.i : end]
                self.i = len(src) if end < 0 else end + 1
                check = line.lstrip("\t") if op == "<<-" else line
                if check == delimiter:
                    break
                lines.append(check)
            word.heredoc = "\n".join(lines) + ("\n" if lines else "")
        self.pending.clear()

    # -- words --------------------------------------------------------------------
    def _word(self) -> Word:
        src, n = self.src, len(self.src)
        start = self.i
        word = Word([], start, start)
        lit: list[str] = []

        def flush() -> None:
            if lit:
                word.parts.append(("lit", "".join(lit)))
                lit.clear()

        while self.i < n:
            c = src[self.i]
            if c in _META and not (
                c in "<>" and src.startswith("(", self.i + 1) and self.i == start
            ):
                break
            if c == "\\":
                if self.i + 1 < n and src[self.i + 1] != "\n":
                    lit.append(src[self.i + 1])
                word.quoted = True
                self.i += 2
            elif c == "'":
                end = src.find("'", self.i + 1)
                if end < 0:
                    raise ShellParseError(f"unterminated single quote at {self.i}")
                lit.append(src[self.i + 1 : end])
                word.quoted = True
                self.i = end + 1
            elif c == '"':
                word.quoted = True
                self.i += 1
                self._double(word, lit, flush)
            elif c == "$" and src.startswith("$'", self.i):
                word.quoted = True
                lit.append(self._ansi())
            elif c == "$" and src.startswith('$"', self.i):
                word.quoted = True
                self.i += 2
                self._double(word, lit, flush)
            elif c == "$" or c == "`" or (c in "<>" and src.startswith("(", self.i + 1)):
                flush()
                self._expansion(word)
            else:
                lit.append(c)
                self.i += 1
        flush()
        word.end = self.i
        if not word.parts:
            word.parts.append(("lit", ""))
        return word

    def _double(self, word: Word, lit: list[str], flush: Callable[[], None]) -> None:
        src, n = self.src, len(self.src)
        while True:
            if self.i >= n:
                raise ShellParseError("unterminated double quote")
            c = src[self.i]
            if c == '"':
                self.i += 1
                return
            if c == "\\" and self.i + 1 < n and src[self.i + 1] in '$`"\\\n':
                if src[self.i + 1] != "\n":
                    lit.append(src[self.i + 1])
                self.i += 2
            elif c in "$`" and not (c == "$" and (self.i + 1 >= n or src[self.i + 1] in ' "\t\n')):
                flush()
                self._expansion(word)
            else:
                lit.append(c)
                self.i += 1

    def _ansi(self) -> str:
        src, n = self.src, len(self.src)
        self.i += 2
        out: list[str] = []
        while True:
            if self.i >= n:
                raise ShellParseError("unterminated $'...' quote")
            c = src[self.i]
            if c == "'":
                self.i += 1
                return "".join(out)
            if c != "\\" or self.i + 1 >= n:
                out.append(c)
                self.i += 1
                continue
            nxt = src[self.i + 1]
            if nxt in _ANSI:
                out.append(_ANSI[nxt])
                self.i += 2
                continue
            size, base = {"x": (2, 16), "u": (4, 16), "U": (8, 16)}.get(nxt, (3, 8))
            j = self.i + 2 if nxt in "xuU" else self.i + 1
            digits = _HEX if base == 16 else _OCT
            k = j
            while k < n and k - j < size and src[k] in digits:
                k += 1
            if k == j:
                out.append("\\" + nxt)
                self.i += 2
                continue
            out.append(chr(min(int(src[j:k], base), 0x10FFFF)))
            self.i = k

    def _expansion(self, word: Word) -> None:
        src, n = self.src, len(self.src)
        i = self.i
        if src.startswith("$((", i):
            end = _balanced(src, i + 1, "(", ")")
            word.parts.append(("raw", src[i:end]))
            self.i = end
        elif src.startswith("$(", i) or (src[i] in "<>" and src.startswith("(", i + 1)):
            end = _balanced(src, i + 1, "(", ")")
            inner = src[i + 2 : end - 1]
            word.subs.append(self.parse(inner, self.depth + 1, i + 2))
            kind = "sub" if src[i] == "$" else "raw"
            word.parts.append((kind, src[i:end], str(len(word.subs) - 1)))
            self.i = end
        elif src[i] == "`":
            j, buf = i + 1, []
            while True:
                if j >= n:
                    raise ShellParseError("unterminated backquote")
                if src[j] == "\\" and j + 1 < n and src[j + 1] in "$`\\":
                    buf.append(src[j + 1])
                    j += 2
                elif src[j] == "`":
                    break
                else:
                    buf.append(src[j])
                    j += 1
            word.subs.append(self.parse("".join(buf), self.depth + 1, -1))
            word.parts.append(("sub", src[i : j + 1], str(len(word.subs) - 1)))
            self.i = j + 1
        elif src.startswith("${", i):
            end = _balanced(src, i + 1, "{", "}")
            body = src[i + 2 : end - 1]
            name, default = body, None
            for sep in (":-", ":=", "-", "="):
                head, found, tail = body.partition(sep)
                if found and head.isidentifier():
                    name, default = head, tail
                    break
            if name.isidentifier() or name.isdigit():
                word.parts.append(("var", name, default, src[i:end]))
            else:
                word.parts.append(("raw", src[i:end]))
            self.i = end
        else:
            j = i + 1
            if j < n and (src[j] in "@*#?$!-" or src[j].isdigit()):
                j += 1
            else:
                while j < n and (src[j].isalnum() or src[j] == "_"):
                    j += 1
            if j == i + 1:
                word.parts.append(("lit", "$"))
            else:
                word.parts.append(("var", src[i + 1 : j], None, src[i:j]))
            self.i = j


def _balanced(src: str, i: int, open_: str, close: str) -> int:
    """The index just past the ``close`` matching ``src[i] == open_``, skipping quotes."""
    depth, j, n = 0, i, len(src)
    while j < n:
        c = src[j]
        if c == "\\":
            j += 2
            continue
        if c == "'" and open_ == "(":
            end = src.find("'", j + 1)
            if end < 0:
                break
            j = end + 1
            continue
        if c == '"':
            k = j + 1
            while k < n and src[k] != '"':
                k += 2 if src[k] == "\\" else 1
            j = k + 1
            continue
        if c == open_:
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    raise ShellParseError(f"unterminated {open_!r} opened at {i}")
