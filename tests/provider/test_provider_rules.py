"""Rules: answers chosen by what a request contains, so an agent's tool round trip can
be scripted (Python API, YAML/JSON files, the CLI), and the conversation readers
behind them on all three protocols."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import anthropic
import httpx
import openai
import pytest

from luthien_lab.errors import DatasetError
from luthien_lab.provider import LocalProvider, ProviderRequest, ScriptedResponse, local_provider
from luthien_lab.provider._rules import (
    last_tool_result,
    offered_tools,
    system_text,
    trailing_tool_results,
)

pytestmark = pytest.mark.timeout(30)

MODEL = "claude-sonnet-4-6"
BASH = {
    "name": "Bash",
    "description": "Run a shell command",
    "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
}
READ = {"name": "Read", "input_schema": {"type": "object"}}
OPENAI_BASH = {
    "type": "function",
    "function": {"name": "Bash", "parameters": {"type": "object"}},
}


def claude(p: LocalProvider) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=p.url, api_key="sk-local", max_retries=0, timeout=10)


def add_agent_rules(p: LocalProvider) -> None:
    p.add_rule(
        {"prompt_contains": "LIST FILES", "offers_tool": "Bash"},
        {"text": "Listing.", "tool_calls": [{"name": "Bash", "arguments": {"command": "ls"}}]},
        name="list",
    )
    p.add_rule(
        {"after_tool_result": "Bash"},
        lambda r: f"The files are: {r.last_tool_result()[1]}",
        name="summarize",
    )


def test_anthropic_tool_round_trip_with_rules():
    with local_provider() as p:
        add_agent_rules(p)
        c = claude(p)
        messages: list = [{"role": "user", "content": "Please list files here."}]
        with c.messages.stream(
            model=MODEL, max_tokens=100, tools=[BASH, READ], messages=messages
        ) as s:
            first = s.get_final_message()
        assert first.stop_reason == "tool_use"
        use = first.content[1]
        assert (use.type, use.name, use.input) == ("tool_use", "Bash", {"command": "ls"})
        messages += [
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": use.id, "content": "a.txt b.txt"},
                    {"type": "text", "text": "<system-reminder>keep going</system-reminder>"},
                ],
            },
        ]  # fmt: skip
        with c.messages.stream(
            model=MODEL, max_tokens=100, tools=[BASH, READ], messages=messages
        ) as s:
            assert s.get_final_text() == "The files are: a.txt b.txt"
        assert [r.source for r in p.requests] == ["rule:list", "rule:summarize"]
        assert [rule.fired for rule in p.rules] == [1, 1]


def test_openai_tool_round_trip_with_rules():
    with local_provider() as p:
        add_agent_rules(p)
        oa = openai.OpenAI(base_url=p.openai_base, api_key="sk-local", max_retries=0)
        messages: list = [{"role": "user", "content": "list files please"}]
        first = oa.chat.completions.create(model="gpt-4o", messages=messages, tools=[OPENAI_BASH])
        call = first.choices[0].message.tool_calls[0]
        assert (call.function.name, json.loads(call.function.arguments)) == (
            "Bash",
            {"command": "ls"},
        )
        messages += [
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "x.py"},
        ]
        second = oa.chat.completions.create(model="gpt-4o", messages=messages, tools=[OPENAI_BASH])
        assert second.choices[0].message.content == "The files are: x.py"
        assert [r.source for r in p.requests] == ["rule:list", "rule:summarize"]


def test_rule_precedence_times_and_names():
    with local_provider() as p:
        p.add_case("hello", "from the case")
        p.set_default("from the default")
        key = p.script("from the script")
        once = p.add_rule({"prompt_contains": "hello"}, "from the rule", times=1)
        assert once.name == "rule-1" and once.times == 1
        c = claude(p)

        def ask(text, **kw):
            msg = c.messages.create(
                model=MODEL, max_tokens=10, messages=[{"role": "user", "content": text}], **kw
            )
            return msg.content[0].text

        assert ask("hello", extra_headers={"x-luthien-script": key}) == "from the script"
        assert ask("hello") == "from the rule"
        assert ask("hello") == "from the case"  # times=1: spent
        assert ask("other") == "from the default"
        assert [r.source for r in p.requests] == ["script", "rule:rule-1", "case", "default"]
        assert once.fired == 1 and once.exhausted
        p.clear_rules()
        assert p.rules == []


def test_rules_are_tried_in_order_and_callables_see_the_parsed_body():
    seen: list[ProviderRequest] = []

    def wants_json_mode(request: ProviderRequest) -> bool:
        seen.append(request)
        return request.body.get("metadata", {}).get("user_id") == "u-42"

    with local_provider() as p:
        p.add_rule(wants_json_mode, ScriptedResponse(text="first"), name="callable")
        p.add_rule({}, "catch-all", name="all")
        c = claude(p)
        kw = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
        assert c.messages.create(**kw, metadata={"user_id": "u-42"}).content[0].text == "first"
        assert c.messages.create(**kw).content[0].text == "catch-all"
        assert [r.source for r in p.requests] == ["rule:callable", "rule:all"]
        assert seen[0] is p.requests[0] and seen[0].prompt == "x"


ANTHROPIC_AFTER_BASH = {
    "model": "claude-opus-4-6",
    "system": [{"type": "text", "text": "You are Claude Code, an agent."}],
    "tools": [BASH],
    "messages": [
        {"role": "user", "content": "run the tests"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_9", "name": "Bash", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_9",
                    "content": [{"type": "text", "text": "3 FAILED"}],
                    "is_error": True,
                }
            ],
        },
    ],
}


@pytest.mark.parametrize(
    ("spec", "fires"),
    [
        # a prompt-only spec stays quiet on a conversation ending on a tool result
        ({"prompt_contains": "Run The Tests"}, False),
        ({"prompt_regex": r"^run"}, False),
        ({"prompt_contains": "Run The Tests", "after_tool_result": True}, True),
        ({"prompt_contains": "deploy", "after_tool_result": True}, False),
        ({"prompt_regex": r"^run\s+the", "after_tool_result": "Bash"}, True),
        ({"prompt_regex": r"^RUN", "after_tool_result": True}, False),
        ({"prompt_regex": r"(?i)^RUN", "tool_result_contains": "3 f"}, True),
        ({"after_tool_result": True}, True),
        ({"after_tool_result": False}, False),
        ({"after_tool_result": "Bash"}, True),
        ({"after_tool_result": "Read"}, False),
        ({"tool_result_contains": "failed"}, True),
        ({"tool_result_contains": "passed"}, False),
        ({"offers_tool": "Bash"}, True),
        ({"offers_tool": "bash"}, False),
        ({"system_contains": "claude code"}, True),
        ({"system_contains": "codex"}, False),
        ({"model_contains": "OPUS"}, True),
        ({"model_contains": "haiku"}, False),
        ({"protocol": "anthropic"}, True),
        ({"protocol": "openai"}, False),
        ({"after_tool_result": "Bash", "tool_result_contains": "failed", "protocol": "anthropic"}, True),
        ({"after_tool_result": "Bash", "model_contains": "haiku"}, False),
    ],
)  # fmt: skip
def test_match_spec_keys(provider, spec, fires):
    provider.clear_rules()
    provider.add_rule(spec, "ruled", name="under-test")
    try:
        r = httpx.post(f"{provider.url}/v1/messages?beta=true", json=ANTHROPIC_AFTER_BASH)
    finally:
        provider.clear_rules()
    assert r.status_code == 200
    text = r.json()["content"][0]["text"]
    record = provider.requests[-1]
    if fires:
        assert (text, record.source) == ("ruled", "rule:under-test")
    else:
        assert (text, record.source) == ("Local echo: tool result received.", "tool_result")


def test_prompt_rules_fire_on_the_prompt_turn(provider):
    provider.clear_rules()
    provider.add_rule({"prompt_regex": r"^run\s+the", "offers_tool": "Bash"}, "ruled", name="p")
    body = {**ANTHROPIC_AFTER_BASH, "messages": ANTHROPIC_AFTER_BASH["messages"][:1]}
    try:
        r = httpx.post(f"{provider.url}/v1/messages", json=body)
        assert r.json()["content"][0]["text"] == "ruled"
        body["messages"] = [{"role": "user", "content": "please run the tests"}]
        r = httpx.post(f"{provider.url}/v1/messages", json=body)
        assert r.json()["content"][0]["text"] == "Local echo: please run the tests"
    finally:
        provider.clear_rules()
    assert [q.source for q in provider.requests[-2:]] == ["rule:p", "echo"]


def test_responses_protocol_rule(provider):
    provider.clear_rules()
    provider.add_rule({"protocol": "responses", "prompt_contains": "hi"}, "resp rule", name="r")
    try:
        r = httpx.post(f"{provider.url}/v1/responses", json={"model": "gpt-5", "input": "hi there"})
    finally:
        provider.clear_rules()
    assert r.status_code == 200, r.text
    assert provider.requests[-1].source == "rule:r"
    assert "resp rule" in r.text


@pytest.mark.parametrize(
    ("match", "response", "kwargs", "error"),
    [
        ({"prompt_has": "x"}, "a", {}, "unknown match key"),
        ({"protocol": "gemini"}, "a", {}, "protocol must be one of"),
        ({"after_tool_result": 3}, "a", {}, "after_tool_result must be"),
        ({"offers_tool": ["Bash"]}, "a", {}, "offers_tool must be a string"),
        ({"prompt_regex": "("}, "a", {}, r"prompt_regex '\(': missing \)"),
        ({}, {"txt": "typo"}, {}, "txt"),
        ({}, "a", {"times": 0}, "times must be"),
        ("prompt", "a", {}, "match must be a callable or a dict"),
    ],
)
def test_bad_rules_fail_when_added(provider, match, response, kwargs, error):
    with pytest.raises((ValueError, TypeError), match=error):
        provider.add_rule(match, response, **kwargs)
    assert provider.rules == []


@pytest.mark.parametrize("where", ["match", "response"])
def test_a_raising_rule_answers_500_in_the_protocol_format(where):
    def boom(request):
        raise LookupError("no such thing")

    match = boom if where == "match" else {}
    response = boom if where == "response" else "x"
    with local_provider() as p:
        p.add_rule(match, response, name="broken")
        r = httpx.post(
            f"{p.url}/v1/messages",
            json={"model": "c", "messages": [{"role": "user", "content": "q"}]},
        )
        assert r.status_code == 500
        assert r.json()["type"] == "error" and r.json()["error"]["type"] == "api_error"
        assert "rule 'broken'" in r.json()["error"]["message"]
        assert "no such thing" in r.json()["error"]["message"]
        assert p.requests[-1].status == 500 and p.rules[0].fired == 0
        # the connection and the provider stay usable
        r = httpx.post(f"{p.openai_base}/chat/completions", json={"model": "m", "messages": []})
        assert r.status_code == 500 and set(r.json()) == {"error"}


# -- files ----------------------------------------------------------------------------
RULES_YAML = """\
- match: {prompt_contains: "list files", offers_tool: Bash}
  respond: {tool_calls: [{name: Bash, arguments: {command: ls}}]}
- name: done
  match: {after_tool_result: Bash}
  respond: "Two files."
  times: 1
"""


def test_rules_from_yaml_drive_a_session(tmp_path):
    path = tmp_path / "session.yaml"
    path.write_text(RULES_YAML)
    with local_provider(rules=path) as p:
        assert [(r.name, r.times) for r in p.rules] == [("session-1", None), ("done", 1)]
        c = claude(p)
        messages: list = [{"role": "user", "content": "list files"}]
        first = c.messages.create(model=MODEL, max_tokens=50, tools=[BASH], messages=messages)
        use = first.content[0]
        assert (use.name, use.input) == ("Bash", {"command": "ls"})
        messages += [
            {"role": "assistant", "content": [use.model_dump(exclude_none=True)]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "a b"}]},
        ]  # fmt: skip
        second = c.messages.create(model=MODEL, max_tokens=50, tools=[BASH], messages=messages)
        assert second.content[0].text == "Two files."
        assert [r.source for r in p.requests] == ["rule:session-1", "rule:done"]


def test_rules_from_json_with_a_rules_key(tmp_path):
    path = tmp_path / "r.json"
    rules = {"rules": [{"match": {"model_contains": "mini"}, "response": {"text": "json rule"}}]}
    path.write_text(json.dumps(rules))
    p = LocalProvider()
    assert p.load_rules(path) == 1
    with p:
        r = httpx.post(
            f"{p.openai_base}/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
        )
        assert r.json()["choices"][0]["message"]["content"] == "json rule"
        assert p.requests[-1].source == "rule:r-1"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("match: {}\n", "expected a list of rules"),
        ("- match: {}\n", "exactly one of 'respond'"),
        ("- respond: a\n  response: b\n", "exactly one of 'respond'"),
        ("- respond: a\n  when: {}\n", "unknown key"),
        ("- respond: a\n  match: [x]\n", "'match' must be a mapping"),
        ("- respond: a\n  match: {prompt: x}\n", "rule 1: unknown match key"),
        ("- respond: a\n- respond: {fault: nope}\n", r"(?s)rule 2: .*unknown fault 'nope'"),
        ("- [unclosed\n", "invalid rules file"),
    ],
)
def test_bad_rules_files_name_the_problem(tmp_path, text, error):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(DatasetError, match=error):
        LocalProvider(rules=path)
    with pytest.raises(DatasetError, match="no such rules file"):
        LocalProvider(rules=tmp_path / "missing.yaml")


@pytest.mark.timeout(30)
def test_cli_serves_rules(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text('- match: {prompt_contains: ping}\n  respond: "pong from rules"\n')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "luthien_lab.cli", "provider", "--no-dataset"]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port), "--rules", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        banner = [proc.stdout.readline() for _ in range(5)]
        assert f"127.0.0.1:{port}" in banner[0]
        assert f"1 rules from {path}" in banner[-1]
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/messages",
            json={"model": "c", "messages": [{"role": "user", "content": "ping?"}]},
        )
        assert r.json()["content"][0]["text"] == "pong from rules"
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "stopped (1 requests served)" in out


def test_cli_reports_a_bad_rules_file(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("- match: {nope: 1}\n  respond: x\n")
    proc = subprocess.run(
        [sys.executable, "-m", "luthien_lab.cli", "provider", "--no-dataset", "--rules", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "unknown match key" in proc.stderr


# -- conversation readers -------------------------------------------------------------
def test_readers_on_openai_chat_with_parallel_results_and_images():
    body = {
        "messages": [
            {"role": "system", "content": "sys one"},
            {"role": "developer", "content": [{"type": "text", "text": "dev two"}]},
            {"role": "user", "content": "do both"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "Bash", "arguments": "{}"}},
                    {"id": "c2", "type": "function", "function": {"name": "Read", "arguments": "{}"}},
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "bash out"},
            {
                "role": "tool",
                "tool_call_id": "c2",
                "content": [
                    {"type": "text", "text": "read out"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
                ],
            },
        ],
        "tools": [OPENAI_BASH],
    }  # fmt: skip
    assert trailing_tool_results(body) == [("Bash", "bash out"), ("Read", "read out\n[image]")]
    assert last_tool_result(body) == ("Read", "read out\n[image]")
    assert system_text(body) == "sys one\ndev two"
    assert offered_tools(body) == ["Bash"]


def test_readers_on_responses_items():
    body = {
        "instructions": "be brief",
        "tools": [{"type": "function", "name": "shell", "parameters": {}}],
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "go"}]},
            {"type": "function_call", "call_id": "fc1", "name": "shell", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "fc1", "output": "done"},
        ],
    }
    assert trailing_tool_results(body) == [("shell", "done")]
    assert system_text(body) == "be brief"
    assert offered_tools(body) == ["shell"]
    assert trailing_tool_results({"input": "just text"}) == []


def test_last_tool_result_of_an_earlier_turn_and_unknown_ids():
    body = {
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Grep", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "hit"}]},
            {"role": "assistant", "content": "Found it."},
            {"role": "user", "content": "thanks"},
        ]
    }  # fmt: skip
    assert last_tool_result(body) == ("Grep", "hit")
    assert trailing_tool_results(body) == []  # the conversation moved on
    orphan = {"messages": [{"role": "tool", "tool_call_id": "zz", "content": "?"}]}
    assert last_tool_result(orphan) == (None, "?")
    assert last_tool_result(None) == (None, "")
