"""Start-up: what imports litellm, and what must not.

Importing litellm takes seconds. A process that calls no provider through litellm
must never import it: each case runs in a fresh interpreter and reports the litellm
modules in its ``sys.modules``. Every litellm import of luthien-lab goes through one
door (``luthien_lab.clients._litellm.import_litellm``), which switches off the
per-call work luthien-lab does not use. No timing is asserted here:
``benchmarks/bench_startup.py`` measures.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "luthien_lab"
RECORDED = ROOT / "tests" / "fixtures" / "recorded-chunks"

# The report every probe ends with: the litellm modules this interpreter imported.
_REPORT = """
import json as _json, sys as _sys
print("LITELLM-MODULES " + _json.dumps(sorted(
    m for m in _sys.modules if m == "litellm" or m.startswith("litellm.")
)))
"""


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "LUTHIEN_LAB_PROVIDER": "local", "PYTHONPATH": str(ROOT)}
    env.pop("LUTHIEN_LAB_STORE", None)
    env.update(extra)
    return env


def _litellm_modules(output: str) -> list[str]:
    for line in output.splitlines():
        if line.startswith("LITELLM-MODULES "):
            return json.loads(line.removeprefix("LITELLM-MODULES "))
    raise AssertionError(f"the probe did not report:\n{output[-3000:]}")


def probe(code: str, tmp_path: Path, **env: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; the litellm modules it imported."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code) + _REPORT],
        cwd=tmp_path,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return _litellm_modules(done.stdout)


@pytest.fixture(scope="module")
def recorded_store(tmp_path_factory) -> Path:
    """A store file holding one recorded transaction (a tool-call stream through a
    policy that changed the text and blocked a call), written by this process."""
    import asyncio

    from luthien_lab import ScriptedLLMClient, create_default_orchestrator
    from luthien_lab.policies import ToolFilterPolicy

    path = tmp_path_factory.mktemp("store") / "runs.duckdb"
    chunks = json.loads((RECORDED / "anthropic_multiple_tools_chunks.json").read_text())
    policy = ToolFilterPolicy(deny=["get_time"], blocked_message="[blocked {name}]")
    orchestrator = create_default_orchestrator(policy, ScriptedLLMClient(chunks), store=path)

    async def run() -> None:
        from tests.support import REQUEST

        async for _ in orchestrator.process_streaming_response(REQUEST):
            pass

    asyncio.run(run())
    for listener in orchestrator.listeners:
        close = getattr(listener, "close", None)
        if close is not None:
            close()
    return path


# ----- processes that must never import litellm -----


def test_importing_the_package_and_the_lab(tmp_path):
    assert probe("import luthien_lab", tmp_path) == []
    assert probe("from luthien_lab import lab; import luthien_lab.widgets", tmp_path) == []


def test_cli_help(tmp_path):
    code = """
    from luthien_lab.cli import main
    for argv in (["--help"], [], ["--version"]):
        try:
            main(argv)
        except SystemExit as exit:  # argparse's --help
            assert not exit.code, exit.code
    """
    assert probe(code, tmp_path) == []


def test_cli_help_as_a_script(tmp_path):
    """The installed script itself, as a user runs it."""
    script = Path(sys.executable).with_name("luthien-lab")
    if not script.exists():
        pytest.skip("the luthien-lab script is not installed")
    code = f"""
    import runpy, sys
    sys.argv = [{str(script)!r}, "--help"]
    try:
        runpy.run_path({str(script)!r}, run_name="__main__")
    except SystemExit as exit:
        assert not exit.code, exit.code
    """
    assert probe(code, tmp_path) == []


def test_the_local_provider_serving_requests(tmp_path):
    """``luthien-lab provider`` started, asked a streaming and a plain completion,
    then stopped with SIGTERM as a user's Ctrl-C or a supervisor would."""
    code = """
    import sys
    from luthien_lab.cli import main
    code = main(["provider", "--port", "0", "--no-dataset"])
    assert code == 0, code
    """
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", textwrap.dedent(code) + _REPORT],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, line + (proc.stderr.read() if proc.stderr else "")
        url = line.split("listening on", 1)[1].strip()
        import httpx

        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        headers = {"authorization": "Bearer sk-local"}
        plain = httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers)
        assert plain.status_code == 200, plain.text
        streamed = httpx.post(
            f"{url}/v1/chat/completions", json={**body, "stream": True}, headers=headers
        )
        assert streamed.status_code == 200 and "data:" in streamed.text
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-3000:]
    assert _litellm_modules(out) == []


def test_reading_a_store(recorded_store, tmp_path):
    code = f"""
    from luthien_lab.store import open_store
    store = open_store({str(recorded_store)!r})
    transactions = store.transactions()
    assert len(transactions) == 1, transactions
    tx = transactions.transaction_id[0]
    assert transactions.status[0] == "blocked"
    assert len(store.chunks(tx)) > 0
    assert len(store.hook_trace(tx)) > 0
    assert "tool_call_blocked" in set(store.events(tx).name)
    pair = store.response_pair(tx)
    assert pair is not None
    store.sql("select count(*) from chunks")
    """
    assert probe(code, tmp_path) == []


def test_rendering_a_recorded_transaction(recorded_store, tmp_path):
    code = f"""
    from luthien_lab.store import open_store
    from luthien_lab.widgets import ResponseDiff, Timeline, TransactionTrace
    from luthien_lab.runs import RunResult
    store = open_store({str(recorded_store)!r})
    tx = store.transactions().transaction_id[0]
    trace = TransactionTrace.from_store(store, tx)
    assert trace.egress and trace.ingress
    html = RunResult(trace, store=store)._repr_html_()
    assert "blocked" in html
    Timeline.from_store(store, tx)
    ResponseDiff.from_store(store, tx)
    repr(RunResult(trace, store=store))
    """
    assert probe(code, tmp_path) == []


def test_eval_over_recordings(tmp_path):
    """``luthien-lab eval`` replays the bundled recordings through a policy (and the
    passthrough baseline) on litellm-free chunks."""
    code = """
    from luthien_lab.cli import main
    code = main(["eval", "--policy", "luthien_lab.policies.uppercase:UppercasePolicy"])
    assert code == 0, code
    code = main(["eval", "--config", CONFIG, "--fail-on-error"])
    assert code == 0, code
    """
    config = tmp_path / "policy.yaml"
    config.write_text(
        "policy:\n  class: luthien_lab.policies.tool_filter:ToolFilterPolicy\n"
        "  config: {deny: [get_weather], blocked_message: ' [blocked {name}]'}\n"
    )
    assert probe(code.replace("CONFIG", repr(str(config))), tmp_path) == []


def test_evaluating_stored_tool_calls(recorded_store, tmp_path):
    """Replaying stored cases through a tool-call policy (SimplePolicy builds each
    call's ``block.tool_call``) stays on litellm-free objects: importing litellm inside
    a hook would hold the event loop for seconds."""
    code = f"""
    from luthien_lab.evaluate import evaluate
    from luthien_lab.policies import ToolFilterPolicy
    from luthien_lab.store import Store
    policy = ToolFilterPolicy(deny=["get_weather"], blocked_message="[blocked {{name}}]")
    with Store({str(recorded_store)!r}, read_only=True) as store:
        result = evaluate({{"filter": policy}}, store.cases(), progress=False)
    assert len(result) == 1, len(result)
    assert result["status"].tolist() == ["blocked"], result["status"].tolist()
    assert "get_weather" in str(result["diff"].tolist()), result["diff"].tolist()
    """
    assert probe(code, tmp_path) == []


# ----- replays without litellm: the litellm-free chunks -----


def test_replay_objects_are_litellm_free_and_match_litellms(tmp_path):
    """With lite chunks preferred, recordings become chunks, the assembler builds
    blocks, built chunks and rebuilt responses come out, all without litellm; and each
    dumps exactly what litellm's objects dump for the same data."""
    code = f"""
    import json
    from pathlib import Path
    from luthien_lab.clients._scripted import to_chunk
    from luthien_lab.streaming.assembler import StreamingChunkAssembler
    from luthien_lab.streaming.chunks import create_finish_chunk, create_text_chunk
    from luthien_lab.streaming.chunks import create_tool_call_chunk, replace_delta
    from luthien_lab.streaming.reconstruct import reconstruct_full_response
    out = {{}}
    for path in sorted(Path({str(RECORDED)!r}).glob("*.json")):
        chunks = [to_chunk(item) for item in json.loads(path.read_text())]
        dumped = [c.model_dump() for c in chunks]  # before the assembler strips content ""
        assembler = StreamingChunkAssembler()
        for chunk in chunks:
            assembler.feed(chunk)
        assembler.finish()
        head = chunks[0]
        built = [
            create_text_chunk("HI", head, role="assistant"),
            replace_delta(chunks[1], content="changed"),
            create_finish_chunk("stop", head, {{"prompt_tokens": 1, "completion_tokens": 2,
                                               "total_tokens": 3}}),
        ]
        built += [create_tool_call_chunk(b.tool_call, head, index=i)
                  for i, b in enumerate(assembler.state.tool_calls)]
        out[path.stem] = {{
            "types": sorted({{type(c).__module__ for c in chunks + built}}),
            "chunks": dumped,
            "built": [c.model_dump() for c in built],
            "json": [json.loads(c.model_dump_json(exclude_none=True)) for c in built],
            "response": reconstruct_full_response(chunks).model_dump(),
        }}
    print("RESULT " + json.dumps(out))
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code) + _REPORT],
        cwd=tmp_path,
        env=_env(LUTHIEN_LAB_LITE_CHUNKS="1"),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert _litellm_modules(done.stdout) == []
    lite = json.loads(next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))[7:])

    from luthien_lab.clients._scripted import to_chunk
    from luthien_lab.streaming.assembler import StreamingChunkAssembler
    from luthien_lab.streaming.chunks import (
        create_finish_chunk,
        create_text_chunk,
        create_tool_call_chunk,
        replace_delta,
    )
    from luthien_lab.streaming.reconstruct import reconstruct_full_response

    def without_created(value):
        if isinstance(value, dict):
            return {k: without_created(v) for k, v in value.items() if k != "created"}
        if isinstance(value, list):
            return [without_created(v) for v in value]
        return value

    for path in sorted(RECORDED.glob("*.json")):
        data = json.loads(path.read_text())
        mine = lite[path.stem]
        assert mine["types"] == ["luthien_lab.streaming.lite"]
        assert mine["chunks"] == data, "a recorded chunk dumps as recorded"
        chunks = [to_chunk(item) for item in data]
        assert type(chunks[0]).__module__.startswith("litellm")
        assembler = StreamingChunkAssembler()
        for chunk in chunks:
            assembler.feed(chunk)
        assembler.finish()
        head = chunks[0]
        usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
        built = [
            create_text_chunk("HI", head, role="assistant"),
            replace_delta(chunks[1], content="changed"),
            create_finish_chunk("stop", head, usage),
        ]
        built += [
            create_tool_call_chunk(b.tool_call, head, index=i)
            for i, b in enumerate(assembler.state.tool_calls)
        ]
        assert without_created(mine["built"]) == without_created([c.model_dump() for c in built])
        assert mine["json"] == [json.loads(c.model_dump_json(exclude_none=True)) for c in built]
        assert without_created(mine["response"]) == without_created(
            reconstruct_full_response(chunks).model_dump()
        )


def test_lite_objects_behave_like_litellms():
    from luthien_lab.streaming import lite

    data = json.loads((RECORDED / "gpt_multiple_tools_chunks.json").read_text())
    item = next(
        item
        for item in data
        if item["choices"] and (item["choices"][0]["delta"].get("tool_calls") or [{}])[0].get("id")
    )
    chunk = lite.Chunk.from_dict(item)
    call = chunk.choices[0].delta.tool_calls[0]
    assert call.function.name and call.index == 0
    assert chunk.choices[0].delta.reasoning_content is None  # absent reads as None
    with pytest.raises(AttributeError):
        _ = chunk.no_such_field
    copy = chunk.model_copy(deep=True)
    assert copy == chunk and copy is not chunk
    copy.choices[0].delta.tool_calls[0].function.arguments = "changed"
    assert chunk.choices[0].delta.tool_calls[0].function.arguments != "changed"
    assert lite.Chunk.from_dict(item) == chunk
    assert chunk.model_dump() == item
    assert json.loads(chunk.model_dump_json()) == item
    assert "Chunk(" in repr(chunk)


# ----- the one door to litellm -----


def _runtime_litellm_imports(path: Path) -> list[int]:
    """Lines importing litellm outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(), str(path))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                typing_only.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    lines = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        litellm = any(n == "litellm" or n.startswith("litellm.") for n in names)
        if litellm and node.lineno not in typing_only:
            lines.append(node.lineno)
    return lines


def test_every_litellm_import_goes_through_the_one_door():
    door = PACKAGE / "clients" / "_litellm.py"
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == door:
            continue
        lines = _runtime_litellm_imports(path)
        relative = path.relative_to(PACKAGE).as_posix()
        if lines:
            found[relative] = lines
    assert found == {}, "import litellm through luthien_lab.clients._litellm.import_litellm"


def test_the_door_switches_off_what_luthien_lab_does_not_use(tmp_path):
    code = """
    import os
    from luthien_lab.clients import _litellm
    litellm = _litellm.import_litellm()
    assert _litellm.import_litellm() is litellm
    assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert litellm.suppress_debug_info is True
    assert litellm.response_cost_calculator is _litellm._no_cost
    with _litellm.litellm_pricing():  # what `luthien-lab record` records with
        assert litellm.response_cost_calculator is not _litellm._no_cost
    assert litellm.response_cost_calculator is _litellm._no_cost
    import gc
    assert gc.get_freeze_count() > 100000, gc.get_freeze_count()
    assert _litellm.import_seconds is not None and _litellm.imported_at_ns is not None
    assert _litellm.litellm_types().ModelResponseStream is not None
    print("DOOR-OK")
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0 and "DOOR-OK" in done.stdout, done.stderr[-3000:]


def test_the_door_keeps_litellms_pricing_and_gc_when_asked(tmp_path):
    code = """
    from luthien_lab.clients import _litellm
    litellm = _litellm.import_litellm()
    assert litellm.response_cost_calculator is not _litellm._no_cost
    import gc
    assert gc.get_freeze_count() == 0
    print("DOOR-OK")
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tmp_path,
        env=_env(LUTHIEN_LAB_LITELLM_COSTS="1", LUTHIEN_LAB_GC_FREEZE="0"),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0 and "DOOR-OK" in done.stdout, done.stderr[-3000:]


def test_the_demo_ends_cleanly_without_the_teardown(tmp_path):
    """``luthien-lab demo`` leaves without the interpreter's module teardown: its output
    is complete, its exit code is 0, and its exit handlers ran (the store it recorded
    to is closed and readable)."""
    script = Path(sys.executable).with_name("luthien-lab")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "luthien_lab.cli"]
    store = tmp_path / "demo.duckdb"
    done = subprocess.run(
        [*command, "demo", "--store", str(store)],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "LET ME CHECK THE WEATHER" in done.stdout
    assert f"to {store}" in done.stdout.splitlines()[-1]
    from luthien_lab.store import open_store

    reopened = open_store(store)
    try:
        assert list(reopened.transactions().status) == ["ok"]
    finally:
        reopened.close()
