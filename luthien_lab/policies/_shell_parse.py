"""The shell parser: :mod:`._shell_lex`'s tokens grouped into simple commands.

Lenient where leniency can only find more commands: reserved words (``if``, ``then``,
``do``, ``{``...) are skipped, the non-command words of ``for``/``select``/``case``/
``function`` too, ``name()`` starts a function body, ``( ... )`` is a subshell. Each
:class:`Command` keeps its words, ``NAME=value`` assignments, redirections (with
here-document bodies) and whether it pipes into the next one.
"""

from __future__ import annotations

from luthien_lab.policies._shell_lex import (
    _RESERVED_SKIP,
    Command,
    Lexer,
    Redirect,
    Script,
    Subshell,
    Word,
)

__all__ = ["parse"]

_REDIRECTS = frozenset({"&>>", "<<<", "<<-", ">>", "<<", "<&", ">&", "<>", ">|", "&>", "<", ">"})


def _is_assignment(word: Word) -> tuple[str, Word] | None:
    first = word.parts[0]
    if first[0] != "lit" or "=" not in first[1]:
        return None
    name, _, rest = first[1].partition("=")
    if not name.isidentifier() and not (name.endswith("+") and name[:-1].isidentifier()):
        return None
    value = Word([("lit", rest), *word.parts[1:]], word.start, word.end, word.quoted, word.subs)
    return name.rstrip("+"), value


class _Parser:
    def __init__(self, tokens: list[Word | tuple[str, int]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def items(self, closing: str | None = None) -> list[Command | Subshell]:
        out: list[Command | Subshell] = []
        cmd = Command()
        mode = ""  # skipping the non-command words of ``for``/``select``/``case``/``function``
        tokens = self.tokens
        while self.pos < len(tokens):
            tok = tokens[self.pos]
            self.pos += 1
            if isinstance(tok, Word):
                text = tok.literal()
                at_start = not cmd.words and not cmd.assigns
                if mode in ("name", "subject"):
                    mode = "in?" if mode == "name" else "case-in"
                    continue
                if mode == "list":
                    continue
                if mode in ("in?", "case-in"):
                    was, mode = mode, ""
                    if text == "in":
                        mode = "list" if was == "in?" else ""
                        continue
                if at_start and text in ("for", "select", "function"):
                    mode = "name" if text != "function" else "subject"
                    continue
                if at_start and text == "case":
                    mode = "subject"
                    continue
                if at_start and text in _RESERVED_SKIP:
                    continue
                if at_start and (assign := _is_assignment(tok)) is not None:
                    cmd.assigns.append(assign)
                    cmd.start = tok.start if cmd.start < 0 else cmd.start
                    cmd.end = tok.end
                    continue
                if not cmd.words and cmd.start < 0:
                    cmd.start = tok.start
                cmd.words.append(tok)
                cmd.end = tok.end
                continue
            op, at = tok
            if op in _REDIRECTS:
                target = tokens[self.pos] if self.pos < len(tokens) else None
                if isinstance(target, Word):
                    self.pos += 1
                else:
                    target = None
                fd = ""
                last = cmd.words[-1] if cmd.words else None
                if last is not None and last.end == at and (last.literal() or "x").isdigit():
                    fd = cmd.words.pop().literal() or ""
                redirect = Redirect(op, target, fd)
                if target is not None and op in ("<<", "<<-"):
                    redirect.body = target.heredoc
                elif target is not None and op == "<<<":
                    redirect.body = "".join(p[1] if p[0] == "lit" else p[-1] for p in target.parts)
                    redirect.body += "\n"
                cmd.redirects.append(redirect)
                cmd.start = at if cmd.start < 0 else cmd.start
                cmd.end = target.end if target is not None else at + len(op)
                continue
            mode = ""
            if op == "(":
                if cmd.words and self.pos < len(tokens) and tokens[self.pos] == (")", at + 1):
                    self.pos += 1  # ``name()``: a function definition
                    cmd = Command()
                    continue
                if cmd.words or cmd.assigns:
                    continue  # ``case`` patterns and the like: lenient
                out.append(Subshell(self.items(closing=")")))
                continue
            if op == ")":
                if closing == ")":
                    self._close(cmd, out)
                    return out
                self._close(cmd, out)
                cmd = Command()
                continue
            if op in ("|", "|&"):
                cmd.pipe = True
                if not cmd.words and out and isinstance(out[-1], Subshell):
                    out[-1].pipe = True
            self._close(cmd, out)
            cmd = Command()
        self._close(cmd, out)
        return out

    @staticmethod
    def _close(cmd: Command, out: list[Command | Subshell]) -> None:
        if cmd.words or cmd.assigns or cmd.redirects:
            out.append(cmd)


def _parse(src: str, depth: int, offset: int = 0) -> Script:
    lexer = Lexer(src, depth, _parse)
    tokens = lexer.run()
    parser = _Parser(tokens)
    return Script(src, parser.items(), offset)


def parse(src: str, depth: int = 0, offset: int = 0) -> Script:
    """Parse ``src`` (raises :class:`ShellParseError`). Here-document bodies are read
    when the lexer reaches the end of their line; a parse at depth > ``MAX_DEPTH``
    (substitutions within substitutions...) is refused. ``offset``: where ``src``
    starts in its parent's source (-1: it is not a slice of it)."""
    return _parse(src, depth, offset)
