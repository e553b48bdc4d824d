"""``luthien-lab serve`` and ``create_app``: a gateway asked to record refuses to start
without its store, and the hook limits of ``gateway:`` reach the pipeline; a policy
that hangs or emits something that is not a chunk gets the client a well-formed error
in its API's format, and the transaction is recorded as an error (#20)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import uvicorn

from luthien_lab import PipelineListener, Policy, ScriptedLLMClient, StoreError
from luthien_lab.cli import main
from luthien_lab.gateway import GatewaySettings, create_app, load_config
from luthien_lab.streaming import helpers
from tests.gateway.conftest import serve
from tests.support import text_stream

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _collector_threshold_restored():
    """``serve`` sets the process's collector threshold: not for the tests after."""
    import gc

    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


CONFIG = """policy:
  class: "luthien_lab.policies.passthrough:NoOpPolicy"
gateway:
  store: {store}
"""


def _unopenable(tmp_path, kind: str) -> str:
    if kind == "under a file":
        (tmp_path / "a-file").write_text("not a folder")
        return str(tmp_path / "a-file" / "x.duckdb")
    path = tmp_path / "not-duckdb.duckdb"
    path.write_bytes(b"this is not a DuckDB database, just bytes " * 100)
    return str(path)


@pytest.mark.parametrize("kind", ["under a file", "not a database"])
def test_serve_refuses_to_start_when_its_store_cannot_be_opened(
    tmp_path, capsys, monkeypatch, kind
):
    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: served.append(app))
    store = _unopenable(tmp_path, kind)
    config = tmp_path / "policy.yaml"
    config.write_text(CONFIG.format(store=json.dumps(store)))

    code = main(["serve", "--config", str(config)])
    out, err = capsys.readouterr()
    assert code != 0 and served == []
    assert "recording:" not in out, "it must not claim to record"
    assert store in err and "--no-record" in err and "gateway.store: null" in err

    # The way out the message gives works: the same config, without recording.
    assert main(["serve", "--config", str(config), "--no-record"]) == 0
    out, _err = capsys.readouterr()
    assert len(served) == 1 and "(recording: off)" in out


def test_create_app_refuses_a_store_it_cannot_open(tmp_path):
    from luthien_lab import NoOpPolicy

    store = _unopenable(tmp_path, "under a file")
    with pytest.raises(StoreError, match="--no-record") as info:
        create_app(NoOpPolicy(), llm_client=ScriptedLLMClient(text_stream("a")), store=store)
    assert store in str(info.value) and info.value.__cause__ is not None


def test_the_gateway_hook_limits_reach_the_orchestrator(tmp_path):
    config = tmp_path / "policy.yaml"
    config.write_text(
        'policy: {class: "luthien_lab.policies.passthrough:NoOpPolicy"}\n'
        "gateway: {store: null, hook_timeout: 2.5, hook_block_warning: null}\n"
    )
    loaded = load_config(config)
    app = create_app(loaded.policy, settings=loaded.gateway, store=loaded.gateway.store)
    orchestrator = app.state.gateway.orchestrator
    assert orchestrator.hook_timeout == 2.5 and orchestrator.hook_block_warning is None
    defaults = create_app(loaded.policy, settings=GatewaySettings(store=None))
    assert defaults.state.gateway.orchestrator.hook_timeout == GatewaySettings().hook_timeout


# ----- what the client gets when the policy misbehaves -----


class Ends(PipelineListener):
    def __init__(self) -> None:
        self.statuses: list[str] = []
        self.errors: list[str | None] = []

    def transaction_finished(self, transaction_id, result):
        self.statuses.append(result.status)
        self.errors.append(result.error_type)


class Misbehaves(Policy):
    """Forwards content; hangs or emits a non-chunk where the prompt says: at the
    first delta ("... first") or the second ("... later"); not streaming, in
    process_full_response (hangs, or returns a dict)."""

    async def process_full_response(self, response, context):
        said = context.request.last_user_message
        if said.startswith("hang"):
            await asyncio.Event().wait()
        return response.model_dump() if said.startswith("junk") else response

    async def on_content_delta(self, ctx):
        said = ctx.final_request.last_user_message
        first = (
            ctx.ingress_state.current_block.content == ctx.ingress_state.current_block.last_delta
        )
        if said.endswith("first") == first:
            if said.startswith("hang"):
                await asyncio.Event().wait()
            if said.startswith("junk"):
                await ctx.egress_queue.put({"choices": [{"delta": {"content": "junk"}}]})
        await helpers.send_text(ctx, ctx.ingress_state.current_block.last_delta)


@pytest.fixture(scope="module")
def misbehaving():
    ends = Ends()
    settings = GatewaySettings(store=None, hook_timeout=0.3)
    app = create_app(
        Misbehaves(),
        settings=settings,
        llm_client=ScriptedLLMClient(text_stream("a", "b", "c")),
        listeners=[ends],
    )
    with serve(app) as url:
        yield url, ends


def _body(path: str, prompt: str, stream: bool) -> dict:
    body = {"model": "m", "messages": [{"role": "user", "content": prompt}], "stream": stream}
    if path == "/v1/messages":
        body["max_tokens"] = 100
    return body


def _sse_data(text: str) -> list[dict]:
    return [
        json.loads(line[len("data:") :])
        for line in text.splitlines()
        if line.startswith("data:") and line.strip() != "data: [DONE]"
    ]


def _streamed_text(path: str, events: list[dict]) -> str:
    if path == "/v1/messages":
        return "".join(
            e["delta"].get("text", "") for e in events if e.get("type") == "content_block_delta"
        )
    return "".join(
        e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices")
    )


def _is_error(path: str, body: dict) -> bool:
    if path == "/v1/messages":
        return body.get("type") == "error" and body["error"]["type"] == "api_error"
    return body.get("error", {}).get("type") == "policy_error"


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
@pytest.mark.parametrize("fault", ["hang", "junk"])
async def test_a_fault_before_any_output_is_an_error_response_in_the_apis_format(
    misbehaving, path, fault
):
    url, ends = misbehaving
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for stream in (False, True):
            before = len(ends.statuses)
            response = await http.post(path, json=_body(path, f"{fault} first", stream))
            assert response.status_code == 500, response.text
            body = response.json()
            assert _is_error(path, body), body
            message = body["error"]["message"]
            hook = "on_content_delta" if stream else "process_full_response"
            assert f"Misbehaves.{hook}" in message
            assert ("0.3 s" in message) if fault == "hang" else ("dict" in message)
            assert ends.statuses[before:] == ["error"]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
@pytest.mark.parametrize("fault", ["hang", "junk"])
async def test_a_fault_mid_stream_ends_it_with_an_error_event_never_silently(
    misbehaving, path, fault
):
    url, ends = misbehaving
    before = len(ends.statuses)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        response = await http.post(path, json=_body(path, f"{fault} later", True))
    assert response.status_code == 200
    events = _sse_data(response.text)
    errors = [e for e in events if "error" in e]
    assert len(errors) == 1 and errors[0] is events[-1], events
    assert _is_error(path, errors[0]), errors[0]
    assert "Misbehaves.on_content_delta" in errors[0]["error"]["message"]
    assert _streamed_text(path, events) == "a", "what came before the fault, nothing after"
    expected = "HookTimeoutError" if fault == "hang" else "PolicyError"
    assert ends.statuses[before:] == ["error"] and ends.errors[before:] == [expected]


def test_serve_sets_the_collectors_threshold_and_refuses_a_bad_value(tmp_path, capsys, monkeypatch):
    import gc

    from luthien_lab.gateway.cli import GC_ENV, GC_THRESHOLD, collector_threshold

    config = tmp_path / "policy.yaml"
    config.write_text(CONFIG.format(store="null"))
    seen: list[tuple[int, int, int]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.append(gc.get_threshold()))
    gc.set_threshold(777, 9, 8)  # whatever the process had: only the first is serve's

    monkeypatch.delenv(GC_ENV, raising=False)
    assert main(["serve", "--config", str(config)]) == 0
    assert seen[-1] == (GC_THRESHOLD, 9, 8)

    gc.set_threshold(777, 9, 8)
    monkeypatch.setenv(GC_ENV, "0")  # Python's own, left alone
    assert collector_threshold() is None
    assert main(["serve", "--config", str(config)]) == 0
    assert seen[-1] == (777, 9, 8)

    monkeypatch.setenv(GC_ENV, "5000")
    assert main(["serve", "--config", str(config)]) == 0
    assert seen[-1] == (5000, 9, 8)

    for bad in ("lots", "-3", "1.5"):
        monkeypatch.setenv(GC_ENV, bad)
        capsys.readouterr()
        assert main(["serve", "--config", str(config)]) == 2
        err = capsys.readouterr().err
        assert repr(bad) in err and GC_ENV in err
    assert len(seen) == 3, "a bad value must stop serve before it starts"
