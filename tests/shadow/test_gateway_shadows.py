"""Shadow policies through the gateway, for each wire API: the live response is the
same byte for byte with and without shadows, each shadow's transaction is recorded
with its own output, linked to the live one, and nothing of it is sent; the upstream
is called once per live request."""

from __future__ import annotations

import pytest

from luthien_lab.policies import RegexBlockPolicy, StringReplacePolicy
from tests.shadow.conftest import APIS, gateway, normalized, send, text_of, transactions

pytestmark = pytest.mark.timeout(90)


def shadows():
    return {
        "replace": StringReplacePolicy(replacements={"magic": "hidden"}),
        "block": RegexBlockPolicy(patterns=["apple"]),
    }


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("api", APIS)
def test_shadows_see_the_live_answer_and_change_nothing_sent(provider, tmp_path, api, stream):
    prompt = f"shadow test {api} {stream}"
    with gateway(provider, api, tmp_path) as plain:
        without = send(provider, plain.url, api, prompt, stream)
    with gateway(provider, api, tmp_path, shadows=shadows()) as shadowed:
        before = len(provider.requests)
        with_shadows = send(provider, shadowed.url, api, prompt, stream)
        upstream_calls = len(provider.requests) - before

    # The client gets exactly what it gets without shadows.
    assert normalized(with_shadows) == normalized(without)
    assert b"hidden" not in with_shadows.content.lower()
    assert b"magic" in with_shadows.content
    # One upstream call for the live request and its two shadows.
    assert upstream_calls == 1

    rows = transactions(shadowed.store)
    live = [r for r in rows if r["shadow_of"] is None]
    assert len(live) == 1 and len(rows) == 3
    live_id = with_shadows.headers["x-luthien-transaction-id"]
    assert live[0]["transaction_id"] == live_id
    assert live[0]["api"] == api and live[0]["status"] == "ok"
    by_name = {r["shadow_name"]: r for r in rows if r["shadow_of"] is not None}
    assert set(by_name) == {"replace", "block"}
    for row in by_name.values():
        assert row["shadow_of"] == live_id
        assert row["api"] == api
        assert row["shadow_dropped"] == 0
        if stream:  # the shadow saw every chunk the live transaction received
            assert row["chunks"]["ingress"] == live[0]["chunks"]["ingress"]

    # Each shadow's own output is recorded: the replacement, the block.
    replace, block = by_name["replace"], by_name["block"]
    assert replace["status"] == "ok"
    assert "hidden" in text_of(replace["final"]).lower()
    assert "magic" not in text_of(replace["final"])
    assert "magic" in text_of(live[0]["final"])
    assert block["status"] == "blocked"
    assert "apple" not in text_of(block["final"])
    assert replace["policy_class"].endswith("StringReplacePolicy")


def test_every_transaction_is_tagged_with_its_api(provider, tmp_path):
    for api in APIS:
        with gateway(provider, api, tmp_path) as gw:
            send(provider, gw.url, api, f"api tag {api}", True)
        rows = transactions(gw.store)
        assert [r["api"] for r in rows] == [api]
        assert rows[0]["shadow_of"] is None and rows[0]["shadow_name"] is None


def test_a_shadow_changing_the_request_records_it_and_sends_nothing(provider, tmp_path):
    from luthien_lab import Policy

    class Rewriter(Policy):
        async def on_request(self, request, context):
            # In place, on purpose: the shadow's copy, never the live request.
            request.messages[0]["content"] = "rewritten by the shadow"
            return request

    prompt = "please keep my words"
    with gateway(provider, "chat", tmp_path, shadows=[Rewriter()]) as gw:
        send(provider, gw.url, "chat", prompt, True)
        sent = provider.requests[-1]
    assert sent.body["messages"][0]["content"] == prompt
    rows = transactions(gw.store)
    shadow = next(r for r in rows if r["shadow_of"] is not None)
    assert shadow["shadow_name"] == "Rewriter"
    assert "rewritten by the shadow" in str(shadow["final_request"])
    live = next(r for r in rows if r["shadow_of"] is None)
    assert "rewritten" not in str(live["final_request"])
