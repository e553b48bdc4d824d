"""``evaluate`` consumes its dataset as a stream: cases are pulled as workers need
them (a store's cases are never loaded whole), and the table keeps dataset order."""

from __future__ import annotations

from typing import Any

import pytest

from luthien_lab import Policy
from luthien_lab.errors import DatasetError
from luthien_lab.evaluate import evaluate

from .helpers import text_recording


class Probe(Policy):
    """Notes how many cases had been pulled when it first ran."""

    def __init__(self, pulled: list[int]) -> None:
        self.pulled = pulled
        self.first: int | None = None

    async def on_chunk_received(self, ctx: Any) -> None:
        if self.first is None:
            self.first = len(self.pulled)
        ctx.egress_queue.put_nowait(ctx.ingress_state.raw_chunks[-1])


def test_cases_are_pulled_as_needed_and_rows_keep_dataset_order():
    pulled: list[int] = []

    def stream():
        for i in range(40):
            pulled.append(i)
            yield text_recording(f"c{i}", "piece ", str(i))

    probe = Probe(pulled)
    result = evaluate({"probe": probe}, stream(), progress=True, concurrency=3)
    assert probe.first is not None and probe.first <= 2  # not the whole dataset first
    assert len(pulled) == 40 and len(result) == 40
    assert list(result.df["case"]) == [f"c{i}" for i in range(40)]
    assert list(result.baseline_df["case"]) == [f"c{i}" for i in range(40)]
    assert result.meta["cases"] == 40


def test_a_repeated_id_in_a_stream_is_named():
    def stream():
        yield text_recording("same", "a")
        yield text_recording("same", "b")

    with pytest.raises(DatasetError, match="duplicate case id 'same'"):
        evaluate({"p": Probe([])}, stream(), progress=False)
