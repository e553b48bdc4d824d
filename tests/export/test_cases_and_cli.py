"""Cases (explicit chunks, the store), the CLI from a saved notebook, the YAML loader."""

from __future__ import annotations

import json
from functools import partial
from types import SimpleNamespace

import pytest

from luthien_lab import ConfigError, ExportError, SimplePolicy
from luthien_lab._sync import run_sync
from luthien_lab.cli import main
from luthien_lab.exporting import cases_from_store, export_policy, instantiate_policy, load_policy
from luthien_lab.exporting._cases import replay_case
from tests.support import text_stream, tool_chunk

STREAMING_ONLY = """%%policy
from luthien_lab import Policy
from luthien_lab.streaming.chunks import create_finish_chunk
from luthien_lab.streaming.helpers import send_chunk, send_text, send_tool_call

BLOCKED = {"delete_file"}

def allowed(block):
    return block.name not in BLOCKED

class LeetNoDelete(Policy):
    async def on_content_delta(self, ctx):
        await send_text(ctx, ctx.ingress_state.current_block.last_delta.replace("e", "3"))

    async def on_tool_call_complete(self, ctx):
        block = ctx.ingress_state.just_completed
        if allowed(block):
            await send_tool_call(ctx, block.tool_call, index=0)

    async def on_finish_reason(self, ctx):
        state = ctx.ingress_state
        await send_chunk(ctx, create_finish_chunk(state.finish_reason, state.raw_chunks[0]))
"""


def _tool_stream():
    return [
        *text_stream("let me see", finish="tool_calls")[:-1],
        tool_chunk(0, id="call_1", name="delete_file", args='{"path": "/"}'),
        tool_chunk(1, id="call_2", name="read_file", args='{"path"'),
        tool_chunk(1, args=': "a.txt"}'),
        *text_stream(finish="tool_calls", role_chunk=False),
    ]


def test_chunk_cases_pin_streaming_and_non_streaming_outcomes(notebook, tmp_path, load_exported):
    notebook.run(STREAMING_ONLY)
    cases = [
        {
            "name": "tools",
            "request": {"model": "m", "messages": [{"role": "user", "content": "go"}]},
            "chunks": _tool_stream(),  # chunk objects: stored as model_dump(mode="json")
        }
    ]
    result = export_policy(notebook["LeetNoDelete"](), tmp_path, cases=cases)
    assert result.helpers == ["BLOCKED", "allowed"]
    case = json.loads(result.cases.read_text())["cases"][0]
    assert all(isinstance(chunk, dict) for chunk in case["chunks"])
    stream, full = case["expected"]["stream"], case["expected"]["full"]
    assert stream["text"] == "l3t m3 s33"
    assert stream["tool_calls"] == [{"name": "read_file", "arguments": {"path": "a.txt"}}]
    assert stream["finish_reason"] == "tool_calls"
    # only streaming hooks: the non-streaming response passes through unchanged
    assert full["text"] == "let me see" and len(full["tool_calls"]) == 2
    exported = load_exported(result)
    assert run_sync(partial(replay_case, exported, case)) == case["expected"]


@pytest.mark.timeout(60)
def test_cases_come_from_the_store_and_must_still_match(notebook, tmp_path):
    from luthien_lab import PolicyOrchestrator, Request, ScriptedLLMClient
    from luthien_lab.store import DuckDBRecorder, Store

    notebook.run(
        "%%policy\nfrom luthien_lab import SimplePolicy\n"
        "class Suffix(SimplePolicy):\n"
        "    def __init__(self, suffix='!'):\n        self.suffix = suffix\n"
        "    async def on_response_content(self, content, request):\n"
        "        return content + self.suffix\n"
    )
    policy = notebook["Suffix"](suffix="?")
    store = Store.memory()
    recorder = DuckDBRecorder(store)
    try:
        orchestrator = PolicyOrchestrator(
            policy, ScriptedLLMClient(chunks=text_stream("hel", "lo")), listeners=[recorder]
        )
        request = Request(model="m", messages=[{"role": "user", "content": "hi"}])

        async def traffic():
            [c async for c in orchestrator.process_streaming_response(request)]
            await orchestrator.process_full_response(request)

        run_sync(traffic)
        recorder.flush()
        cases = cases_from_store(store, policy="Suffix")
        assert len(cases) == 2
        assert {tuple(c["recorded"]) for c in cases} == {("stream",), ("full",)}

        result = export_policy(policy, tmp_path, store=store)
        exported = json.loads(result.cases.read_text())["cases"]
        assert sorted(c["source"].split(":")[0] for c in exported) == ["store", "store"]
        assert all(c["expected"]["stream"]["text"] == "hello?" for c in exported)

        # the class answers differently now than when the cases were recorded
        with pytest.raises(ExportError, match=r"now gives .* where the notebook recorded"):
            export_policy(notebook["Suffix"](suffix="."), tmp_path / "x", store=store)
        with pytest.raises(ExportError, match=r"'nope' is not in the store"):
            cases_from_store(store, transaction_ids=["nope"])
    finally:
        recorder.close()
        store.close()


def test_bad_cases_are_named():
    from luthien_lab.exporting._cases import normalize_cases

    with pytest.raises(ExportError, match=r"case 2 has neither 'chunks' nor 'response'"):
        normalize_cases([{"prompt": "a", "response": "b"}, {"prompt": "a"}])
    with pytest.raises(ExportError, match=r"case 1 has neither 'request' nor 'prompt'"):
        normalize_cases([{"response": "b"}])


def _notebook_file(path, cells):
    notebook = {
        "cells": [
            {"cell_type": kind, "source": text.splitlines(keepends=True), "metadata": {}}
            | ({"outputs": [], "execution_count": None} if kind == "code" else {})
            for kind, text in cells
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook))
    return path


def test_cli_exports_a_class_from_a_saved_notebook(tmp_path, capsys, load_exported):
    nb = _notebook_file(
        tmp_path / "nb.ipynb",
        [
            ("markdown", "# class Fake(SimplePolicy): not code"),
            ("code", "%load_ext luthien_lab\n!pip list\nfrom luthien_lab import SimplePolicy"),
            ("code", "%%bash\nclass NotPython\n"),
            ("code", "STARS = '*'\ndef stars(n):\n    return STARS * n"),
            (
                "code",
                "%%policy\nclass Censor(SimplePolicy):\n"
                "    def __init__(self, word='darn'):\n        self.word = word\n"
                "    async def on_response_content(self, content, request):\n"
                "        return content.replace(self.word, stars(len(self.word)))\n",
            ),
        ],
    )
    (tmp_path / "cases.json").write_text(json.dumps([{"prompt": "x", "response": "oh darn"}]))
    (tmp_path / "config.json").write_text(json.dumps({"word": "oh"}))
    out = tmp_path / "out"
    code = main(
        ["export", "--notebook", str(nb), "--class", "Censor", "--out", str(out),
         "--cases", str(tmp_path / "cases.json"), "--config", str(tmp_path / "config.json")]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "exported censor:Censor (1 cases)" in capsys.readouterr().out
    case = json.loads((out / "censor_cases.json").read_text())["cases"][0]
    assert case["expected"]["stream"]["text"] == "** darn"
    result = SimpleNamespace(module=out / "censor.py", config=out / "censor.yaml")
    policy = load_exported(result)
    assert policy.word == "oh"
    assert run_sync(partial(replay_case, policy, case)) == case["expected"]

    assert main(["export", "--notebook", str(nb), "--class", "Missing", "--out", str(out)]) == 1
    assert "no code cell defining class Missing" in capsys.readouterr().err
    assert main(["export", "--notebook", str(nb), "--class", "NotPython", "--out", str(out)]) == 1


def test_file_defined_policy_with_pydantic_config_exports_with_its_helpers(tmp_path, load_exported):
    from luthien_lab.policies.string_replace import StringReplacePolicy

    policy = StringReplacePolicy(replacements={"OpenAI": "a lab"}, case_sensitive=False)
    cases = [{"prompt": "x", "chunks": text_stream("Op", "enai rocks, OPENAI!")}]
    result = export_policy(policy, tmp_path, cases=cases)
    assert result.origin == "file"
    assert {"StreamingReplacer", "_Engine"} <= set(result.helpers)
    config = result.config.read_text()
    assert "replacements:" in config and "case_sensitive: false" in config
    case = json.loads(result.cases.read_text())["cases"][0]
    assert case["expected"]["stream"]["text"] == "a lab rocks, a lab!"
    exported = load_exported(result)
    assert type(exported).__module__ == "string_replace_policy"
    assert run_sync(partial(replay_case, exported, case)) == case["expected"]


class Configured(SimplePolicy):
    def __init__(self, config):
        self.config = config


def test_loader_builds_policies_the_gateway_way_and_names_bad_configs(tmp_path):
    from luthien_lab.policies.string_replace import StringReplacePolicy

    built = instantiate_policy(StringReplacePolicy, {"replacements": {"a": "b"}})
    assert built.config.replacements == {"a": "b"}
    assert instantiate_policy(Configured, {"config": {"a": 1}}).config == {"a": 1}
    with pytest.raises(ConfigError, match=r"Make the config keys match"):
        instantiate_policy(SimplePolicy, {"a": 1})
    (tmp_path / "bad.yaml").write_text("policy: nope\n")
    with pytest.raises(ConfigError, match=r"needs a 'policy:' mapping"):
        load_policy(tmp_path / "bad.yaml")
    (tmp_path / "missing.yaml").write_text("policy: {class: 'no_such_mod:X'}\n")
    with pytest.raises(ConfigError, match=r"'no_such_mod'.*PYTHONPATH"):
        load_policy(tmp_path / "missing.yaml")
