"""The redraw throttle, with a fake clock and a fake timer (no loop, no browser)."""

from __future__ import annotations

import itertools

import pytest

from luthien_lab.widgets import Throttle


class FakeTimer:
    def __init__(self, clock):
        self.clock = clock
        self.pending: list[list] = []  # [due, fn, cancelled]

    def call_later(self, delay, fn):
        entry = [self.clock.now + delay, fn, False]
        self.pending.append(entry)

        class Handle:
            def cancel(self_inner):
                entry[2] = True

        return Handle()

    def advance(self, seconds):
        self.clock.now += seconds
        for entry in [e for e in self.pending if e[0] <= self.clock.now]:
            self.pending.remove(entry)
            if not entry[2]:
                entry[1]()


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def make(interval=0.05):
    clock = FakeClock()
    timer = FakeTimer(clock)
    drawn: list[float] = []
    throttle = Throttle(
        lambda: drawn.append(clock.now), interval, clock=clock, call_later=timer.call_later
    )
    return clock, timer, drawn, throttle


def test_first_poke_draws_at_once_and_bursts_coalesce():
    _clock, timer, drawn, throttle = make()
    throttle.poke()
    assert drawn == [1000.0]
    for _ in range(500):  # a burst of 500 chunks within one millisecond
        throttle.poke()
    assert len(drawn) == 1 and throttle.dirty
    timer.advance(0.05)
    assert len(drawn) == 2 and not throttle.dirty
    assert throttle.pokes == 501


def test_at_most_twenty_redraws_a_second_under_steady_load():
    _clock, timer, drawn, throttle = make()
    for _ in range(2000):  # one poke per millisecond for two seconds
        throttle.poke()
        timer.advance(0.001)
    assert 30 <= len(drawn) <= 41
    gaps = [b - a for a, b in itertools.pairwise(drawn)]
    assert min(gaps) >= 0.05 - 1e-9


def test_flush_draws_pending_state_once_and_cancels_timer():
    _clock, timer, drawn, throttle = make()
    throttle.poke()
    throttle.poke()
    throttle.flush()
    assert len(drawn) == 2
    timer.advance(1)
    assert len(drawn) == 2  # the cancelled trailing redraw did not fire
    throttle.flush()
    assert len(drawn) == 2  # nothing pending: no redraw


def test_idle_poke_after_interval_draws_immediately():
    clock, _timer, drawn, throttle = make()
    throttle.poke()
    clock.now += 5
    throttle.poke()
    assert drawn == [1000.0, 1005.0]


def test_interval_must_be_positive():
    with pytest.raises(ValueError, match="interval"):
        Throttle(lambda: None, 0)
