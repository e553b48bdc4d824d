# %% [markdown]
# # 8. Put a policy in front of Claude Code
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
"""
)
config = work / "policy.yaml"
config.write_text(
    """
policy:
  class: "luthien_lab.policies.tool_filter:ToolFilterPolicy"
  config:
    deny: [Bash]
    blocked_message: "\\n[luthien: {name} is not allowed here]"
gateway:
  store: gateway.duckdb
"""
)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(args, ready_url):
    proc = subprocess.Popen(
        [sys.executable, "-m", "luthien_lab.cli", *args],
        cwd=work,
        env={**os.environ, "LUTHIEN_LAB_PROVIDER": "local"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(600):
        try:
            if httpx.get(ready_url).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{args[0]} did not start")


provider_port, gateway_port = free_port(), free_port()
provider = start(
    ["provider", "--port", str(provider_port), "--rules", str(rules)],
    f"http://127.0.0.1:{provider_port}/health",
)
config.write_text(
    config.read_text()
    + f"  upstream: {{provider: anthropic, api_base: 'http://127.0.0.1:{provider_port}'}}\n"
)
gateway = start(
    ["serve", "--config", str(config), "--port", str(gateway_port)],
    f"http://127.0.0.1:{gateway_port}/health",
)
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
provider.terminate()
provider.wait(timeout=10)
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
