"""Storable forms: what cannot be stored as it is is stored changed, and the change noted.

A value reaches DuckDB as JSON text or as Arrow strings. Four things stop it:

- nesting deeper than :data:`MAX_DEPTH` levels: walking or encoding it recurses, and
  Python's recursion limit is reached around 500 levels (about 2 KB of JSON). The part
  below that depth is replaced by :data:`DEPTH_MARKER`;
- a lone UTF-16 surrogate (``"\\ud800"``): legal in a Python string, not in UTF-8.
  Each one is written as its six-character escape (the text ``\\ud800``);
- a string longer than :data:`MAX_TEXT` characters: a recording is for reading, not a
  blob store, and one such value would make a whole write slow and large. It is cut
  to ``MAX_TEXT`` characters, the last of them a marker giving the full length;
- a float that is not finite (NaN, infinity): JSON has no spelling for it, and DuckDB
  refuses ``NaN`` in a JSON column. It is written as the string ``"NaN"``,
  ``"Infinity"`` or ``"-Infinity"``.

Every change is recorded in a :class:`Notes` and lands in the transaction's
``storage_notes`` column, so a stored value that differs from what was sent says so.
:func:`safe_tree` applies the same rules to any value (chunks included): the
recorder's fallback when a transaction's write failed as it was.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = [
    "DEPTH_MARKER",
    "MAX_DEPTH",
    "MAX_TEXT",
    "Notes",
    "safe_float",
    "safe_text",
    "safe_tree",
    "to_plain",
]

MAX_DEPTH = 128  # the gateway refuses JSON deeper than 100: what it accepts is kept whole
MAX_TEXT = 16 * 1024 * 1024  # characters, per string
DEPTH_MARKER = f"[luthien-lab: cut here, nested deeper than {MAX_DEPTH} levels]"
_TRUNCATED = "…[luthien-lab: truncated, {n} characters in all]"
_UNREPRESENTABLE = "[luthien-lab: a {name} that could not be represented: {error}]"
_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


class Notes:
    """What was changed to store one transaction: ``(field, action)`` with a detail and
    how many values it applied to."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}

    def add(self, field: str, action: str, detail: str = "") -> None:
        item = self.items.get((field, action))
        if item is None:
            # A detail quotes errors and sizes: keep it short and storable itself.
            detail = _escape_surrogates(detail[:500])
            self.items[field, action] = {
                "field": field,
                "action": action,
                "detail": detail,
                "count": 1,
            }
        else:
            item["count"] += 1

    def __bool__(self) -> bool:
        return bool(self.items)

    def as_list(self) -> list[dict[str, Any]]:
        return list(self.items.values())

    def to_json(self, earlier: str | None = None) -> str | None:
        """The notes as JSON text (None when there are none), after ``earlier`` notes."""
        notes = json.loads(earlier) if earlier else []
        notes.extend(self.as_list())
        return json.dumps(notes, ensure_ascii=False) if notes else None


def _escape_surrogates(text: str) -> str:
    if text.isascii() or not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def safe_text(text: str, notes: Notes, field: str) -> str:
    """``text``, truncated and with lone surrogates escaped when it must be."""
    if len(text) > MAX_TEXT:
        # Marker included, the result fits: checking it again changes nothing.
        marker = _TRUNCATED.format(n=len(text))
        notes.add(field, "truncated", f"a text of {len(text)} characters cut to {MAX_TEXT}")
        text = text[: MAX_TEXT - len(marker)] + marker
    # isascii() is O(1) in CPython: the search runs on non-ASCII text only.
    if not text.isascii() and _SURROGATE.search(text):
        notes.add(field, "surrogates_escaped", "lone UTF-16 surrogates written as \\uXXXX text")
        text = _escape_surrogates(text)
    return text


def safe_float(value: float, notes: Notes, field: str) -> float | str:
    if math.isfinite(value):
        return value
    notes.add(field, "not_finite", "NaN or infinity written as a string")
    return "NaN" if math.isnan(value) else _NOT_FINITE[value]


def unrepresentable(value: Any, error: BaseException, notes: Notes, field: str) -> str:
    notes.add(field, "unrepresentable", f"{type(value).__name__}: {type(error).__name__}")
    return _UNREPRESENTABLE.format(name=type(value).__name__, error=type(error).__name__)


def to_plain(value: Any) -> Any:
    """Plain Python data from a pydantic model (extras included) or anything else."""
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        try:
            return dump(mode="json", warnings=False)
        except Exception:
            try:
                return dump(warnings=False)
            except Exception:
                return str(value)
    return value


def plain(value: Any, notes: Notes, field: str) -> Any:
    """Plain data from a pydantic model or anything else; a marker when even that
    fails (a model nested too deep for its own serializer, say)."""
    try:
        return to_plain(value)
    except Exception as error:  # RecursionError included
        return unrepresentable(value, error, notes, field)


def safe_tree(value: Any, notes: Notes, field: str, depth: int = 0) -> Any:
    """A JSON-able copy of ``value`` (models dumped) following every rule above."""
    if isinstance(value, str):
        return safe_text(value, notes, field)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return safe_float(value, notes, field)
    if depth >= MAX_DEPTH:
        notes.add(field, "depth_cut", f"nested deeper than {MAX_DEPTH} levels")
        return DEPTH_MARKER
    if isinstance(value, dict):
        return {
            safe_text(str(key), notes, field): safe_tree(item, notes, field, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [safe_tree(item, notes, field, depth + 1) for item in value]
    data = plain(value, notes, field)
    if data is value:  # not a model: its text is all that can be kept
        try:
            return safe_text(str(value), notes, field)
        except Exception as error:
            return unrepresentable(value, error, notes, field)
    return safe_tree(data, notes, field, depth)
