"""No test asserts an upper bound on a duration.

A wall-clock upper bound (``assert elapsed < 3``) fails on a loaded machine without
anything being wrong (two did at 6-10 s on this project's CI). Tests check counts,
order and structure instead; figures belong in ``benchmarks/``. This guard reads every
test module and flags an ``assert`` whose comparison bounds a time-like value from
above by a number:

- time-like: a call to ``time.monotonic``/``perf_counter``/``time``/``process_time``
  (``_ns`` too, ``loop.time()``), a local name assigned from one, or a name,
  attribute or string key (``df["total_ms"]``) called ``elapsed``, ``duration``,
  ``seconds``, ``took``, ``latency``, ``wall``, ``timings``, ``waited``, or ending in
  ``_s``, ``_ms``, ``_ns``, ``_us``, ``_sec(s)``, ``_seconds``, ``_elapsed``...;
- a number: a numeric literal (``-1``, ``2 * 0.5`` too) or an UPPER_CASE constant name.

Lower bounds (``elapsed >= 0.5``: a stall really waited) cannot fail on a slow machine
and are allowed; so are deadlines compared with a name (``time.monotonic() <
deadline``: a wait that gives up). A genuine exception goes in ``ALLOWED`` with its
reason.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent

# "path relative to tests/::function" -> why its upper bound is not a wall-clock figure.
ALLOWED: dict[str, str] = {}

_CLOCKS = {
    "monotonic",
    "monotonic_ns",
    "perf_counter",
    "perf_counter_ns",
    "process_time",
    "process_time_ns",
    "time",
    "time_ns",
}
_TIME_WORDS = re.compile(
    r"^(elapsed|duration|durations|seconds|secs|took|latency|wall|wall_time|timings?|waited)$"
    r"|(_s|_ms|_ns|_us|_sec|_secs|_seconds|_elapsed|_duration|_latency|_took)$"
)
_UPPER = (ast.Lt, ast.LtE)
_LOWER = (ast.Gt, ast.GtE)


def _is_clock_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    # time.time(), time.monotonic(), loop.time(), perf_counter() (imported bare)
    return name in _CLOCKS


def _identifier(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):  # df["total_ms"], timings["fast"]
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return key.value
    return None


def _clock_names(function: ast.AST) -> set[str]:
    """Local names assigned (directly or by arithmetic) from a clock reading."""
    names: set[str] = set()
    changed = True
    while changed:  # start = monotonic(); end = start + 1 -> both
        changed = False
        for node in ast.walk(function):
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                value = node.value
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if _time_like(value, names):
                    for target in targets:
                        if isinstance(target, ast.Name) and target.id not in names:
                            names.add(target.id)
                            changed = True
    return names


def _time_like(node: ast.AST, clock_names: set[str]) -> bool:
    for sub in ast.walk(node):
        if _is_clock_call(sub):
            return True
        if isinstance(sub, ast.Name) and sub.id in clock_names:
            return True
        ident = _identifier(sub)
        if ident is not None and _TIME_WORDS.search(ident):
            return True
    return False


def _is_number(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, int | float) and not isinstance(node.value, bool)
    if isinstance(node, ast.UnaryOp):
        return _is_number(node.operand)
    if isinstance(node, ast.BinOp):
        return _is_number(node.left) and _is_number(node.right)
    if isinstance(node, ast.Name):
        return node.id.isupper()
    return False


def _functions(tree: ast.Module) -> Iterator[ast.AST]:
    yield tree
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def upper_time_bounds(source: str, filename: str = "<test>") -> list[tuple[int, str, str]]:
    """``(line, function, assert source)`` of every assert bounding a time from above."""
    tree = ast.parse(source, filename)
    found: dict[int, tuple[int, str, str]] = {}
    for function in _functions(tree):
        name = getattr(function, "name", "<module>")
        clocks = _clock_names(function)
        for node in ast.walk(function):
            if not isinstance(node, ast.Assert):
                continue
            for compare in ast.walk(node.test):
                if not isinstance(compare, ast.Compare):
                    continue
                operands = [compare.left, *compare.comparators]
                for op, left, right in zip(compare.ops, operands, operands[1:], strict=False):
                    bounded = (
                        isinstance(op, _UPPER) and _time_like(left, clocks) and _is_number(right)
                    ) or (isinstance(op, _LOWER) and _is_number(left) and _time_like(right, clocks))
                    if bounded:
                        # The innermost function wins: it is the one that holds the assert.
                        found[node.lineno] = (node.lineno, name, ast.unparse(node.test))
    return sorted(found.values())


def test_no_test_asserts_an_upper_bound_on_a_duration():
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        relative = path.relative_to(TESTS).as_posix()
        for line, function, text in upper_time_bounds(path.read_text(encoding="utf-8"), relative):
            if f"{relative}::{function}" not in ALLOWED:
                offenders.append(f"{relative}:{line} ({function}): assert {text}")
    assert offenders == [], "check counts, order or structure instead:\n" + "\n".join(offenders)


def test_every_allowed_exception_still_exists():
    for key in ALLOWED:
        relative, function = key.split("::")
        source = (TESTS / relative).read_text(encoding="utf-8")
        assert any(f == function for _, f, _ in upper_time_bounds(source)), key


def test_the_guard_flags_what_it_should():
    flagged = """
import time
from time import perf_counter
def test_a():
    start = time.monotonic()
    assert time.monotonic() - start < 3
def test_b():
    t0 = perf_counter(); work(); t1 = perf_counter()
    assert t1 - t0 < 0.1
def test_c(result):
    assert result.elapsed <= 2.5
def test_d(stats):
    assert 0.9 < stats.duration_s < 5
def test_e(report):
    assert 10 > report.latency_ms
def test_f(loop):
    began = loop.time()
    assert loop.time() - began < MAX_WAIT
def test_g(took):
    assert ok and took < 2 * 0.5
def test_h(fast, timings):
    assert fast.df["total_ms"].iloc[0] < 100
    assert timings["fast"] < 0.5
"""
    lines = [line for line, _, _ in upper_time_bounds(flagged)]
    assert len(lines) == 9, upper_time_bounds(flagged)


def test_the_guard_leaves_legit_comparisons_alone():
    legit = """
import time
def test_lower_bounds(stall):
    start = time.monotonic()
    assert time.monotonic() - start >= 0.5
    assert 0.28 <= stall.elapsed
def test_deadlines(deadline):
    while time.monotonic() < 5:  # a loop condition, not an assert
        pass
    assert time.monotonic() < deadline, "gave up waiting"
def test_equalities_and_counts(row, chunks):
    assert row["duration_ms"] == 6.0
    assert len(chunks) < 10
    assert row["chunk_index"] < 3
def test_recorded_offsets(row):
    assert row.offset_ns >= 0
"""
    assert upper_time_bounds(legit) == []
