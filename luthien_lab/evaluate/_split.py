"""Re-splitting a recorded stream at other chunk boundaries.

A stream is parsed into :class:`Segments`: *fixed* chunks (role, tool-call headers,
finish, usage, thinking signatures, anything with several kinds of payload) that are
kept intact, and *runs* of payload text of one kind (content, reasoning, refusal, or
one tool call's arguments) that may be cut anywhere. A *split* is a set of cut
positions per run; :meth:`Segments.chunks` rebuilds a stream with those boundaries.
The concatenated content/arguments are preserved exactly whatever the split.

Cuts are code-point positions in a Python ``str``, so a split can fall between the
code points of one user-perceived character: an emoji and its modifier or ZWJ, a
letter and its combining accent, any CJK character boundary. (JSON strings cannot
hold half a UTF-8 sequence, so no split falls inside a code point.)

Payload riding on a role or tool-header chunk is peeled off into the run that
follows (the chunk keeps its role / id / name, with empty payload), so that the
first characters of a text or of the arguments can be split too.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Run", "Segments", "Split"]

# A split: for every run (by position in Segments.runs), sorted cut positions.
Split = tuple[tuple[int, ...], ...]

_TEXT_KEYS = ("content", "reasoning_content", "refusal")
_HEADER_KEYS = ("id", "object", "created", "model", "system_fingerprint")


@dataclass(frozen=True)
class Run:
    """Payload text of one kind, between two fixed chunks.

    ``key`` is ``"content"``, ``"reasoning_content"``, ``"refusal"`` or
    ``"tool:<index>"``; ``original_cuts`` are the recording's own boundaries.
    """

    key: str
    text: str
    original_cuts: tuple[int, ...]

    def pieces(self, cuts: Iterable[int]) -> list[str]:
        bounds = [0, *sorted(set(cuts)), len(self.text)]
        return [self.text[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _truthy_delta_keys(delta: Mapping[str, Any]) -> set[str]:
    return {key for key, value in delta.items() if value not in (None, "", [], {})}


def _classify(chunk: Mapping[str, Any]) -> tuple[str, str | None, str, Any]:
    """``(kind, key, text, peeled)``: kind is "fragment" (pure payload of ``key``),
    "peel" (a fixed chunk whose payload ``text`` moves to run ``key``; ``peeled`` is
    the chunk without it) or "fixed"."""
    choices = chunk.get("choices") or []
    if len(choices) != 1 or chunk.get("usage"):
        return "fixed", None, "", None
    choice = choices[0]
    if choice.get("finish_reason"):
        return "fixed", None, "", None
    delta = choice.get("delta") or {}
    keys = _truthy_delta_keys(delta)
    payload = keys & {*_TEXT_KEYS, "tool_calls"}
    if len(payload) != 1:
        return "fixed", None, "", None
    (kind,) = payload
    extra = keys - payload
    if kind in _TEXT_KEYS:
        text = delta[kind]
        if not isinstance(text, str):
            return "fixed", None, "", None
        if not extra:
            return "fragment", kind, text, None
        if extra == {"role"}:
            peeled = copy.deepcopy(dict(chunk))
            peeled["choices"][0]["delta"][kind] = ""
            return "peel", kind, text, peeled
        return "fixed", None, "", None
    calls = delta["tool_calls"]
    if extra - {"role"} or len(calls) != 1:
        return "fixed", None, "", None
    call = calls[0]
    function = call.get("function") or {}
    args = function.get("arguments") or ""
    key = f"tool:{call.get('index') or 0}"
    if not isinstance(args, str):
        return "fixed", None, "", None
    if not extra and not call.get("id") and not function.get("name"):
        return "fragment", key, args, None
    if not args:
        return "fixed", None, "", None
    peeled = copy.deepcopy(dict(chunk))
    peeled["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] = ""
    return "peel", key, args, peeled


class Segments:
    """A recorded stream as fixed chunks and splittable runs."""

    def __init__(self, chunks: Sequence[Mapping[str, Any]]):
        self.header = {k: chunks[0].get(k) for k in _HEADER_KEYS} if chunks else {}
        # items: ("fixed", chunk) | ("run", run_index)
        self.items: list[tuple[str, Any]] = []
        self.runs: list[Run] = []
        open_key: str | None = None
        pieces: list[str] = []

        def close() -> None:
            nonlocal open_key, pieces
            if open_key is not None:
                cuts, pos = [], 0
                for piece in pieces[:-1]:
                    pos += len(piece)
                    cuts.append(pos)
                self.items.append(("run", len(self.runs)))
                self.runs.append(Run(open_key, "".join(pieces), tuple(cuts)))
            open_key, pieces = None, []

        for chunk in chunks:
            kind, key, text, peeled = _classify(chunk)
            if kind == "fixed":
                close()
                self.items.append(("fixed", chunk))
                continue
            if kind == "peel":
                close()
                self.items.append(("fixed", peeled))
            if key != open_key:
                close()
                open_key = key
            pieces.append(text)
        close()

    # ----- splits -----

    @property
    def original(self) -> Split:
        return tuple(run.original_cuts for run in self.runs)

    @property
    def coarsest(self) -> Split:
        """Every run in one chunk."""
        return tuple(() for _ in self.runs)

    def finest(self) -> Split:
        """One code point per chunk."""
        return tuple(tuple(range(1, len(run.text))) for run in self.runs)

    def every(self, n: int) -> Split:
        return tuple(tuple(range(n, len(run.text), n)) for run in self.runs)

    def halves(self) -> Split:
        return tuple((len(run.text) // 2,) if len(run.text) > 1 else () for run in self.runs)

    def random(self, rng: Any, density: float) -> Split:
        return tuple(
            tuple(i for i in range(1, len(run.text)) if rng.random() < density) for run in self.runs
        )

    @property
    def splittable(self) -> bool:
        return any(len(run.text) > 1 for run in self.runs)

    def cut_count(self, split: Split) -> int:
        return sum(len(cuts) for cuts in split)

    # ----- rebuilding -----

    def _fragment(self, key: str, text: str) -> dict[str, Any]:
        if key.startswith("tool:"):
            index = int(key.split(":", 1)[1])
            delta: dict[str, Any] = {
                "tool_calls": [
                    {
                        "index": index,
                        "id": None,
                        "type": "function",
                        "function": {"name": None, "arguments": text},
                    }
                ]
            }
        else:
            delta = {key: text}
        return {
            **self.header,
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }

    def chunks(self, split: Split) -> list[dict[str, Any]]:
        """The stream re-split at ``split`` (chunk dicts)."""
        out: list[dict[str, Any]] = []
        for kind, value in self.items:
            if kind == "fixed":
                out.append(value)
                continue
            run = self.runs[value]
            out.extend(self._fragment(run.key, piece) for piece in run.pieces(split[value]))
        return out

    def describe(self, split: Split) -> dict[str, list[str]]:
        """The pieces of every run that ``split`` cuts: ``{"content": ["Open", "AI"]}``."""
        keys = [run.key for run in self.runs]
        return {
            (run.key if keys.count(run.key) == 1 else f"{run.key}#{i}"): run.pieces(cuts)
            for i, (run, cuts) in enumerate(zip(self.runs, split, strict=True))
            if cuts
        }
