"""A shadow that raises, hangs (awaiting forever, or blocking its thread) or falls
behind never changes or holds up the live response; its transaction is still
recorded, with a status saying what happened."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from luthien_lab import Policy
from luthien_lab.policies import StringReplacePolicy
from tests.shadow.conftest import gateway, normalized, send, text_of, transactions

pytestmark = pytest.mark.timeout(90)


class Raising(Policy):
    async def on_content_delta(self, ctx):
        raise RuntimeError("the shadow broke")


class AwaitsForever(Policy):
    async def on_content_delta(self, ctx):
        await asyncio.Event().wait()


class Blocks(Policy):
    """Blocks its thread in a hook until ``gate`` opens, then ``hold`` seconds more;
    notes whether the test opened it (the live response had arrived) or it gave up."""

    def __init__(self, gate: threading.Event, wait: float = 10.0, hold: float = 0.0) -> None:
        self.gate = gate
        self.wait = wait
        self.hold = hold
        self.released: list[bool] = []
        self.entered = threading.Event()

    async def on_content_delta(self, ctx):
        if not self.entered.is_set():
            self.entered.set()
            self.released.append(self.gate.wait(self.wait))  # sync: holds the shadow's loop
            time.sleep(self.hold)


def shadow_rows(store):
    rows = transactions(store)
    live = [r for r in rows if r["shadow_of"] is None]
    assert len(live) == 1
    return live[0], {r["shadow_name"]: r for r in rows if r["shadow_of"] is not None}


@pytest.mark.parametrize(
    ("api", "stream"), [("chat", True), ("chat", False), ("messages", True), ("responses", True)]
)
def test_failing_and_hanging_shadows_leave_the_live_response_alone(provider, tmp_path, api, stream):
    prompt = f"isolation {api} {stream}"
    with gateway(provider, api, tmp_path) as plain:
        expected = normalized(send(provider, plain.url, api, prompt, stream))
    gate = threading.Event()
    blocks = Blocks(gate, hold=0.7)  # past the hook timeout once released
    shadows = {
        "raises": Raising(),
        "awaits": AwaitsForever(),
        "blocks": blocks,
        "replace": StringReplacePolicy(replacements={"magic": "hidden"}),
    }
    with gateway(provider, api, tmp_path, shadows=shadows, hook_timeout=0.5) as gw:
        got = send(provider, gw.url, api, prompt, stream)
        # The whole live response is here while the blocking shadow still waits.
        gate.set()
    assert normalized(got) == expected
    live, by_name = shadow_rows(gw.store)
    assert live["status"] == "ok" and "magic" in text_of(live["final"])
    if stream:
        assert blocks.released == [True], "the live response waited for the shadow"
        assert by_name["raises"]["status"] == "error"
        assert by_name["raises"]["error_type"] == "PolicyError"
        assert "the shadow broke" in by_name["raises"]["error"]
        assert by_name["awaits"]["status"] == "error"
        assert by_name["awaits"]["error_type"] == "HookTimeoutError"
        # It held its thread past the hook timeout: failed when it returned.
        assert by_name["blocks"]["status"] == "error"
        assert by_name["blocks"]["error_type"] == "HookTimeoutError"
    else:  # no streaming hooks run on a full response: they all pass it on
        assert {r["status"] for r in by_name.values()} == {"ok"}
    assert by_name["replace"]["status"] == "ok"
    assert "hidden" in text_of(by_name["replace"]["final"])


def test_a_shadow_blocked_at_shutdown_is_recorded_cancelled_and_nothing_hangs(provider, tmp_path):
    gate = threading.Event()
    blocks = Blocks(gate, wait=30.0)
    with gateway(provider, "chat", tmp_path) as plain:
        expected = normalized(send(provider, plain.url, "chat", "stuck", True))
    with gateway(provider, "chat", tmp_path, shadows={"stuck": blocks}, shadow_grace=0.2) as gw:
        got = send(provider, gw.url, "chat", "stuck", True)
        assert blocks.entered.wait(10)
    # The app has shut down (the block above returned) with the shadow still blocked.
    assert not blocks.released
    gate.set()
    assert normalized(got) == expected
    live, by_name = shadow_rows(gw.store)
    assert live["status"] == "ok"
    assert by_name["stuck"]["status"] == "cancelled"
    assert "blocked at shutdown" in by_name["stuck"]["error"]
    assert by_name["stuck"]["shadow_of"] == live["transaction_id"]


def test_a_shadow_that_falls_behind_drops_and_counts(provider, tmp_path):
    gate = threading.Event()
    slow = Blocks(gate)
    with gateway(provider, "chat", tmp_path, shadows={"slow": slow}, shadow_buffer=2) as gw:
        got = send(provider, gw.url, "chat", "slow one", True)
        gate.set()
    assert got.status_code == 200 and b"[DONE]" in got.content
    live, by_name = shadow_rows(gw.store)
    row = by_name["slow"]
    assert live["status"] == "ok"
    assert row["status"] == "incomplete"
    assert row["error_type"] == "ShadowIncompleteError"
    assert row["shadow_dropped"] > 0
    # What it saw and what it missed add up to what the live transaction received.
    assert row["chunks"]["ingress"] + row["shadow_dropped"] == live["chunks"]["ingress"]
    assert "dropped" in row["error"]
