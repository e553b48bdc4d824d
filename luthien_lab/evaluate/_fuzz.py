"""Chunk-boundary fuzzing: does a policy's output depend on where the stream was split?

For each recorded case the stream is rebuilt with every run of text (and every tool
call's arguments) in one chunk: that output is the *reference*. Then the same
payload is re-split other ways (see :mod:`._split`) and replayed; any split whose
output (text, tool calls, finish reason, error type) differs is a failure, shrunk to
a minimal reproducing split:

1. deterministic splits first: the recording's own boundaries, one code point per
   chunk, halves, every 2 and 3 code points, two seeded random splits. A failing
   one is shrunk by delta debugging (drop half the cuts, then quarters, ... while it
   still fails) until no single cut can be removed;
2. then hypothesis searches random cut sets (``max_examples`` per case, seeded,
   no example database) and shrinks what it finds: fewer cuts, smaller positions.

The smaller of the two minimal splits is reported.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from luthien_lab._sync import run_sync
from luthien_lab.evaluate._cases import Case, Output, to_cases
from luthien_lab.evaluate._replay import run_case
from luthien_lab.evaluate._split import Segments, Split

if TYPE_CHECKING:
    from luthien_lab.policies.base import Policy

__all__ = ["InvarianceFailure", "InvarianceReport", "check_chunk_invariance", "resplit"]


@dataclass
class InvarianceFailure:
    """A case whose output depends on chunk boundaries.

    ``split`` maps each cut run (``"content"``, ``"tool:0"``...) to its pieces under
    the minimal failing split; ``focus`` shows only the characters around each cut
    (``[["Open", "AI"]]``); ``chunks`` is the whole failing stream, ready to replay
    with ``ScriptedLLMClient(chunks)`` in a regression test.
    """

    case: str
    expected: Output
    actual: Output
    split: dict[str, list[str]]
    focus: list[list[str]]
    chunks: list[dict[str, Any]]
    found_by: str
    cuts: int

    def __str__(self) -> str:
        return (
            f"case {self.case!r}: splitting as {self.focus} (found by {self.found_by}, "
            f"{self.cuts} cut(s))\n  whole chunks -> {self.expected.describe()}\n"
            f"  this split   -> {self.actual.describe()}"
        )


@dataclass
class InvarianceReport:
    """The outcome of :func:`check_chunk_invariance`; truthy when every case passed."""

    policy: str
    cases_checked: int
    splits_tried: int
    failures: list[InvarianceFailure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def __bool__(self) -> bool:
        return self.ok

    @property
    def failed_cases(self) -> list[str]:
        return [f.case for f in self.failures]

    def __str__(self) -> str:
        head = (
            f"{self.policy}: {self.cases_checked} case(s), {self.splits_tried} split(s) tried, "
            f"{len(self.failures)} chunk-boundary dependent"
        )
        if self.skipped:
            head += f", {len(self.skipped)} skipped (no recorded stream to re-split)"
        return "\n".join([head, *(str(f) for f in self.failures)])

    def assert_ok(self) -> None:
        """Raise AssertionError listing every failure (for tests)."""
        if self.failures:
            raise AssertionError(str(self))


def _focus(seg: Segments, split: Split, width: int = 12) -> list[list[str]]:
    """For each cut, the text just before and after it (bounded by the neighbouring cuts)."""
    out = []
    for run, cuts in zip(seg.runs, split, strict=True):
        bounds = [0, *cuts, len(run.text)]
        for i in range(1, len(bounds) - 1):
            left = run.text[max(bounds[i - 1], bounds[i] - width) : bounds[i]]
            right = run.text[bounds[i] : min(bounds[i + 1], bounds[i] + width)]
            out.append([left, right])
    return out


def _ddmin(cuts: list[tuple[int, int]], fails: Callable[[list[tuple[int, int]]], bool]) -> list:
    """Delta debugging: a 1-minimal subset of ``cuts`` that still fails."""
    n = 2
    while len(cuts) >= 2:
        size = math.ceil(len(cuts) / n)
        parts = [cuts[i : i + size] for i in range(0, len(cuts), size)]
        for part in parts:
            drop = set(part)
            rest = [c for c in cuts if c not in drop]
            if rest and fails(rest):
                cuts, n = rest, max(n - 1, 2)
                break
        else:
            if n >= len(cuts):
                break
            n = min(len(cuts), 2 * n)
    return cuts


def _to_split(seg: Segments, flat: list[tuple[int, int]]) -> Split:
    per: list[list[int]] = [[] for _ in seg.runs]
    for run, pos in flat:
        per[run].append(pos)
    return tuple(tuple(sorted(p)) for p in per)


def _flat(split: Split) -> list[tuple[int, int]]:
    return [(i, pos) for i, cuts in enumerate(split) for pos in cuts]


class _Checker:
    """Runs one policy over re-splits of one case on a private event loop."""

    def __init__(self, policy: Policy, case: Case, loop: asyncio.AbstractEventLoop):
        assert case.chunks is not None
        self.policy = policy
        self.case = case
        self.loop = loop
        self.seg = Segments(case.chunks)
        self.tried = 0
        self.reference = self.output(self.seg.coarsest)

    def output(self, split: Split) -> Output:
        self.tried += 1
        case = Case(id=self.case.id, request=self.case.request, chunks=self.seg.chunks(split))
        run = self.loop.run_until_complete(run_case(self.policy, case, None, chunk_timeout=None))
        return run.output

    def fails(self, split: Split) -> bool:
        return self.output(split) != self.reference

    def deterministic(self, rng: random.Random) -> tuple[str, Split] | None:
        seg = self.seg
        candidates = [
            ("recorded split", seg.original),
            ("one code point per chunk", seg.finest()),
            ("halves", seg.halves()),
            ("every 2 code points", seg.every(2)),
            ("every 3 code points", seg.every(3)),
            ("random split", seg.random(rng, 0.3)),
            ("random split", seg.random(rng, 0.1)),
        ]
        seen: set[Split] = {seg.coarsest}
        for name, split in candidates:
            if split in seen:
                continue
            seen.add(split)
            if self.fails(split):
                flat = _ddmin(_flat(split), lambda cuts: self.fails(_to_split(seg, cuts)))
                return f"{name}, shrunk by delta debugging", _to_split(seg, flat)
        return None

    def hypothesis(self, max_examples: int, seed: int) -> Split | None:
        from hypothesis import HealthCheck, Phase, find, settings
        from hypothesis import strategies as st
        from hypothesis.errors import NoSuchExample

        def cuts_of(run_length: int) -> Any:
            if run_length < 2:
                return st.just(())
            positions = st.integers(1, run_length - 1)
            return st.lists(positions, unique=True, max_size=min(run_length - 1, 32)).map(
                lambda cuts: tuple(sorted(cuts))
            )

        per_run = [cuts_of(len(run.text)) for run in self.seg.runs]
        strategy = st.tuples(*per_run)
        config = settings(
            max_examples=max_examples,
            database=None,
            deadline=None,
            phases=[Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
            derandomize=False,
        )
        try:
            return find(strategy, self.fails, settings=config, random=random.Random(seed))
        except NoSuchExample:
            return None


def _check(policy: Policy, cases: list[Case], max_examples: int, seed: int) -> InvarianceReport:
    loop = asyncio.new_event_loop()
    report = InvarianceReport(type(policy).__name__, 0, 0)
    try:
        for index, case in enumerate(cases):
            if case.chunks is None:
                report.skipped.append(case.id)
                continue
            checker = _Checker(policy, case, loop)
            report.cases_checked += 1
            if not checker.seg.splittable:
                report.splits_tried += checker.tried
                continue
            rng = random.Random(f"{seed}:{index}")
            found: list[tuple[str, Split]] = []
            det = checker.deterministic(rng)
            if det is not None:
                found.append(det)
            hyp = checker.hypothesis(max_examples, seed + index) if max_examples > 0 else None
            if hyp is not None:
                found.append(("hypothesis, shrunk by hypothesis", hyp))
            report.splits_tried += checker.tried
            if not found:
                continue
            seg = checker.seg
            # Fewest cuts wins; on a tie the deterministic find (listed first) is kept.
            found_by, split = min(found, key=lambda item: seg.cut_count(item[1]))
            report.failures.append(
                InvarianceFailure(
                    case=case.id,
                    expected=checker.reference,
                    actual=checker.output(split),
                    split=seg.describe(split),
                    focus=_focus(seg, split),
                    chunks=seg.chunks(split),
                    found_by=found_by,
                    cuts=seg.cut_count(split),
                )
            )
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    return report


def check_chunk_invariance(
    policy: Policy, dataset: Any, *, max_examples: int = 50, seed: int = 0
) -> InvarianceReport:
    """Report every recorded case whose final output depends on how its stream was
    split into chunks, each with a minimal reproducing split (see the module doc).

    ``dataset``: recordings (``load_recordings()``, a recordings JSONL path, dicts
    with ``chunks`` or plain lists of chunks); prompt cases are skipped. Roles,
    tool-call headers, finish and usage chunks are kept intact; the concatenated
    text and arguments are preserved exactly. Deterministic for a given ``seed``.
    """
    cases = to_cases(dataset)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _check(policy, cases, max_examples, seed)
    # Inside a running loop (Jupyter): hypothesis drives the checks synchronously,
    # each replay on a private loop, so all of it runs on a worker thread.
    return run_sync(lambda: asyncio.to_thread(_check, policy, cases, max_examples, seed))


def resplit(chunks: Any, how: str | int = "chars") -> list[dict[str, Any]]:
    """Re-split a recorded stream: ``"chars"`` (one code point per chunk),
    ``"halves"``, ``"whole"`` (each run in one chunk), ``"recorded"``, or an int n
    (every n code points). Returns chunk dicts for ``ScriptedLLMClient``."""
    from luthien_lab.evaluate._cases import _chunk_dict

    seg = Segments([_chunk_dict(c) for c in getattr(chunks, "chunk_data", chunks)])
    if isinstance(how, int):
        if how < 1:
            raise ValueError(f"split every n code points needs n >= 1, got {how}")
        return seg.chunks(seg.every(how))
    splits = {
        "chars": seg.finest,
        "halves": seg.halves,
        "whole": lambda: seg.coarsest,
        "recorded": lambda: seg.original,
    }
    if how not in splits:
        raise ValueError(f"how must be one of {sorted(splits)} or an int, not {how!r}")
    return seg.chunks(splits[how]())
