"""``lab.run(..., shadow=[...])``: the shadows run on the same provider answer (one
provider call), their results beside the live one, recorded and linked."""

from __future__ import annotations

import pytest

from luthien_lab import Policy, RequestRefused, ScriptedLLMClient, lab
from luthien_lab.policies import StringReplacePolicy, UppercasePolicy
from luthien_lab.store import Store
from tests.support import text_stream

pytestmark = pytest.mark.timeout(60)


class Raising(Policy):
    async def on_content_delta(self, ctx):
        raise RuntimeError("shadow trouble")


@pytest.mark.parametrize("stream", [True, False])
def test_lab_run_shows_each_shadow_beside_the_live_answer(tmp_path, stream):
    client = ScriptedLLMClient(text_stream("the magic ", "words"))
    store_path = tmp_path / "lab.duckdb"
    result = lab.run(
        "hello",
        policy=UppercasePolicy(),
        client=client,
        stream=stream,
        store=str(store_path),
        shadow=[StringReplacePolicy(replacements={"magic": "hidden"}), ("broken", Raising())],
    )
    assert result.status == "ok"
    assert result.text == "THE MAGIC WORDS"
    assert len(client.requests) == 1  # the shadows did not call the provider
    assert set(result.shadows) == {"StringReplacePolicy", "broken"}
    replaced = result.shadows["StringReplacePolicy"]
    assert replaced.status == "ok" and replaced.text == "the hidden words"
    assert replaced.raw_text == "the magic words"
    broken = result.shadows["broken"]
    if stream:
        assert broken.status == "error" and "shadow trouble" in broken.error
    else:  # no streaming hook runs on a full response
        assert broken.status == "ok"
    assert "shadow StringReplacePolicy: ok: 'the hidden words'" in repr(result)
    html = result._repr_html_()
    assert "<h4>shadow StringReplacePolicy</h4>" in html and "the hidden words" in html

    store = Store(store_path, read_only=True)
    try:
        count = store.sql("SELECT count(*) AS n FROM transactions")["n"][0]
        rows = store.sql(
            "SELECT transaction_id, shadow_of, shadow_name FROM transactions "
            "WHERE shadow_of IS NOT NULL"
        ).to_dict("records")
    finally:
        store.close()
    shadows = {r["shadow_name"]: r for r in rows}
    assert set(shadows) == {"StringReplacePolicy", "broken"}
    assert {r["shadow_of"] for r in rows} == {result.transaction_id}
    assert shadows["StringReplacePolicy"]["transaction_id"] == replaced.transaction_id
    assert count == 3


def test_lab_run_without_shadows_has_none():
    client = ScriptedLLMClient(text_stream("plain"))
    result = lab.run("hi", client=client, store=None)
    assert result.shadows == {} and result.text == "plain"


class Refuses(Policy):
    async def on_request(self, request, context):
        raise RequestRefused("not this one")


class FailsOnTheFullResponse(Policy):
    async def process_full_response(self, response, context):
        raise RuntimeError("live policy broke")


def test_a_refused_live_request_leaves_its_shadows_nothing_to_shadow():
    client = ScriptedLLMClient(text_stream("never ", "sent"))
    result = lab.run(
        "hi",
        policy=Refuses(),
        client=client,
        store=None,
        shadow={"plain": StringReplacePolicy(replacements={"a": "b"}), "refuses": Refuses()},
    )
    assert result.status == "blocked" and client.requests == []
    plain = result.shadows["plain"]
    assert plain.status == "incomplete"
    assert "without calling the upstream" in plain.error
    # A shadow that refuses too needs no answer: it is blocked, like the live one.
    assert result.shadows["refuses"].status == "blocked"


def test_a_whole_response_is_shadowed_even_when_the_live_policy_fails_on_it():
    client = ScriptedLLMClient(text_stream("the magic ", "words"))
    result = lab.run(
        "hi",
        policy=FailsOnTheFullResponse(),
        client=client,
        stream=False,
        store=None,
        shadow=[StringReplacePolicy(replacements={"magic": "hidden"})],
    )
    assert result.status == "error"
    shadow = result.shadows["StringReplacePolicy"]
    assert shadow.status == "ok" and shadow.text == "the hidden words"
