# %% [markdown]
# # 8. Put a policy in front of Claude Code and Codex
#
# The gateway speaks the Anthropic Messages API (`/v1/messages`), so Claude Code runs
# through it unchanged: point `ANTHROPIC_BASE_URL` at the gateway. With an Anthropic
# upstream, whatever the policy does not change goes through as Claude Code sent it
# (every field and `anthropic-*` header, unknown ones included) and comes back as the
# upstream sent it (thinking signatures, server tools, citations, pings); what the
# policy changes is rebuilt as well-formed events.
#
# On your machine, two terminals:
#
# ```sh
# # policy.yaml: the policy, and gateway.upstream pointing at Anthropic
# #   gateway:
# #     upstream: {provider: anthropic, api_base: https://api.anthropic.com}
# luthien-lab serve --config policy.yaml           # records to ./luthien_lab.duckdb
# ANTHROPIC_BASE_URL=http://127.0.0.1:8000 claude  # your key goes through as x-api-key
# ```
#
# Offline (no `api_base`, no `ANTHROPIC_API_KEY`), the gateway sends `claude-*` models to
# the bundled local provider instead, as below. Every request is a transaction in the
# store: the request as Claude Code sent it and as the policy left it, every chunk in
# and out, every hook that fired, and its status (`ok`, `blocked`, `error`,
# `cancelled`).

# %%
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

work = Path(tempfile.mkdtemp())
rules = work / "rules.yaml"
rules.write_text(
    """
- name: list-files
  match: {prompt_contains: "list files", offers_tool: Bash}
  respond:
    text: "I'll list the files with OpenAI-style flags."
    tool_calls: [{name: Bash, arguments: {command: "ls -la", description: "List files"}}]
- name: shell
  match: {prompt_contains: "list files", offers_tool: exec_command}
  respond:
    text: "Listing."
    tool_calls: [{name: exec_command, arguments: {cmd: "ls -la"}}]
"""
)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(args):
    return subprocess.Popen(
        [sys.executable, "-m", "luthien_lab.cli", *args],
        cwd=work,
        env={**os.environ, "LUTHIEN_LAB_PROVIDER": "local"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_ready(url):
    for _ in range(600):
        try:
            if httpx.get(url).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


provider_port, gateway_port, codex_port = free_port(), free_port(), free_port()
config = work / "policy.yaml"
config.write_text(
    f"""
policy:
  class: "luthien_lab.policies.tool_filter:ToolFilterPolicy"
  config:
    deny: [Bash]
    blocked_message: "\\n[luthien: {{name}} is not allowed here]"
gateway:
  store: gateway.duckdb
  upstream: {{provider: anthropic, api_base: 'http://127.0.0.1:{provider_port}'}}
"""
)
codex_config = work / "codex.yaml"
codex_config.write_text(
    f"""
policy:
  class: "luthien_lab.policies.tool_filter:ToolFilterPolicy"
  config:
    deny: [exec_command]
    blocked_message: " [luthien: {{name}} is not allowed here]"
gateway:
  store: codex.duckdb
  upstream: {{api_base: 'http://127.0.0.1:{provider_port}/v1', responses_api: native}}
"""
)
# All three start at once: each gateway imports litellm (seconds) before it is ready.
provider = start(["provider", "--port", str(provider_port), "--rules", str(rules)])
gateway = start(["serve", "--config", str(config), "--port", str(gateway_port)])
codex_gateway = start(["serve", "--config", str(codex_config), "--port", str(codex_port)])
for port in (provider_port, gateway_port, codex_port):
    wait_ready(f"http://127.0.0.1:{port}/health")
base = f"http://127.0.0.1:{gateway_port}"

# %% [markdown]
# `claude -p "please list files"` sends the request below (recorded from Claude Code
# 2.1: 21 tools, adaptive thinking, context management, a system message inside
# `messages`). Here it is sent as recorded; `tests/clis/test_claude_code.py` runs
# the real CLI.

# %%
recorded = json.loads(
    Path("../tests/fixtures/claude_code/tool_round_trip.jsonl").read_text().splitlines()[0]
)
headers = {**recorded["headers"], "x-api-key": "sk-your-key"}
reply = httpx.post(
    base + "/v1/messages?beta=true", json=recorded["body"], headers=headers, timeout=60
)
events = [
    json.loads(line[5:])
    for line in reply.text.splitlines()
    if line.startswith("data:")
]
[e["type"] for e in events][:4], events[-2]["delta"]

# %% [markdown]
# The Bash call was removed, the stop reason became `end_turn` (Claude Code has no tool
# to run, so it shows the text and stops), and the text says why:

# %%
"".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")

# %% [markdown]
# ## Reading the transactions
#
# The gateway records to `gateway.duckdb`; open it from the notebook (the gateway's
# writes and your queries take turns on the file).

# %%
from luthien_lab.store import open_store

gateway.terminate()
gateway.wait(timeout=10)
store = open_store(work / "gateway.duckdb")
transactions = store.transactions()
transactions[["status", "model", "streaming", "policy_class"]]

# %%
tid = transactions["transaction_id"][0]
pair = store.response_pair(tid)
sent = pair.loc["final", "request"]
sorted(key for key in sent if key not in ("messages", "tools")), len(sent["tools"])

# %%
hooks = store.hook_trace(tid)
hooks.groupby("hook").size()

# %%
store.events(tid)[["name", "data"]]

# %% [markdown]
# ## Codex CLI and the OpenAI Agents SDK
#
# Codex speaks only the Responses API (`POST /v1/responses`), as does the Agents SDK by
# default. Give Codex a provider entry pointing at the gateway, in
# `~/.codex/config.toml`:
#
# ```toml
# model_provider = "luthien"
# [model_providers.luthien]
# name = "luthien"
# base_url = "http://127.0.0.1:8000/v1"
# wire_api = "responses"
# env_key = "OPENAI_API_KEY"
# ```
#
# With no `api_base` the gateway sends Responses requests natively to OpenAI (with your
# key) or, offline, to the local provider; with an OpenAI-compatible `api_base` that
# only speaks Chat Completions (`gateway.upstream.responses_api: chat`), it translates.
# The Agents SDK needs only a client pointed at the gateway:
# `set_default_openai_client(AsyncOpenAI(base_url="http://127.0.0.1:8000/v1"))`.
#
# Here Codex's recorded request for `codex exec "please list files"` goes through the
# second gateway started at the top, configured to block Codex's shell tool:

# %%
print(codex_config.read_text().strip())

# %%
recorded = json.loads(
    Path("../tests/fixtures/codex/tool_round_trip.jsonl").read_text().splitlines()[0]
)
codex_base = f"http://127.0.0.1:{codex_port}"
reply = httpx.post(codex_base + "/v1/responses", json=recorded["body"], timeout=60)
events = [json.loads(line[5:]) for line in reply.text.splitlines() if line.startswith("data:")]
completed = events[-1]["response"]
[item["type"] for item in completed["output"]], completed["status"]

# %%
completed["output"][-1]["content"][0]["text"]

# %%
codex_gateway.terminate()
codex_gateway.wait(timeout=10)
provider.terminate()
provider.wait(timeout=10)
codex = open_store(work / "codex.duckdb").transactions()
codex[["status", "model", "streaming", "policy_class"]]
