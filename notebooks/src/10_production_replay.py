# %% [markdown]
# # 10. From production back to the notebook
#
# The gateway records every transaction it serves. This notebook takes that traffic
# back to where policies are written: it records a morning of traffic through the
# gateway, watches it arrive, browses it, replays it through a candidate policy, runs
# the candidate as a shadow beside the live policy, and reads the divergence report:
# *would this rule have fired on that traffic, and where would it have changed what
# users saw?*
#
# Everything runs offline: the bundled local provider is the upstream, answering the
# script of requests below with scripted rules.

# %%
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
- name: weather
  match: {prompt_contains: "weather"}
  respond:
    text: "Let me check."
    tool_calls: [{name: get_weather, arguments: {city: "Paris"}}]
- name: cleanup
  match: {prompt_contains: "clean up"}
  respond:
    text: "I'll remove the old build."
    tool_calls: [{name: run_shell, arguments: {command: "rm -rf build/"}}]
- name: news
  match: {prompt_contains: "news"}
  respond: "OpenAI and Anthropic both shipped new models this week."
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


provider_port, gateway_port = free_port(), free_port()
store_path = work / "traffic.duckdb"
live_config = work / "live.yaml"
live_config.write_text(
    f"""
policy:
  class: "luthien_lab.policies.passthrough:NoOpPolicy"
gateway:
  store: {store_path}
  upstream: {{api_base: 'http://127.0.0.1:{provider_port}/v1', responses_api: native}}
"""
)
provider = start(["provider", "--port", str(provider_port), "--rules", str(rules)])
gateway = start(["serve", "--config", str(live_config), "--port", str(gateway_port)])
for port in (provider_port, gateway_port):
    wait_ready(f"http://127.0.0.1:{port}/health")
base = f"http://127.0.0.1:{gateway_port}"

# %% [markdown]
# ## Watch traffic arrive
#
# `lab.watch(path)` lists transactions as the gateway records them. The gateway and
# this notebook are two processes sharing the store file: the watch opens it
# read-only and holds it only for each short query, polling one cheap question
# (how many transactions, and the latest end time) every `interval` seconds.

# %%
from luthien_lab import lab

watch = lab.watch(store_path, interval=0.2)
watch

# %% [markdown]
# The traffic: a script of requests in the Chat Completions, Responses and Anthropic
# Messages APIs, streamed and not.

# %%
PROMPTS = [
    "What's the weather like today?",
    "Please clean up the repository",
    "Any AI news?",
    "Say hello to the team",
    "Is the weather good for a picnic?",
    "Can you clean up my downloads folder?",
]


def chat(prompt, stream):
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": prompt}],
        "stream": stream,
    }
    reply = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=30)
    reply.raise_for_status()


def responses(prompt):
    body = {"model": "gpt-4o-mini", "input": prompt, "stream": False}
    reply = httpx.post(f"{base}/v1/responses", json=body, timeout=30)
    reply.raise_for_status()


def messages(prompt, stream):
    body = {
        "model": "claude-3-5-haiku-latest",
        "max_tokens": 200,
        "messages": [{"role": "user", "content": prompt}],
        "stream": stream,
    }
    reply = httpx.post(f"{base}/v1/messages", json=body, timeout=30)
    reply.raise_for_status()


def send_traffic():
    for n, prompt in enumerate(PROMPTS):
        chat(prompt, stream=n % 2 == 0)
    for prompt in PROMPTS[:2]:
        responses(prompt)
        messages(prompt, stream=True)
    return len(PROMPTS) + 4


sent = send_traffic()
watch.wait_for(sent, timeout=60)

# %% [markdown]
# The watch has seen every transaction the script sent; stop it (its polling thread
# is joined).

# %%
watch.stop()
watch

# %%
from luthien_lab.store import open_store

store = open_store(store_path, read_only=True)
store.sql(
    "SELECT api, streaming, status, count(*) AS transactions FROM transactions "
    "GROUP BY ALL ORDER BY ALL"
)

# %% [markdown]
# ## Browse it
#
# `lab.browse(store, **filters)` lists the store's transactions a page at a time
# (filters: `since`/`until` such as `"7d"`, `status`, `model`, `policy`, `tag`, `api`,
# a SQL `where`, and `search` over request and response text). Selecting one shows
# the three views a notebook run has: raw vs transformed, the hook timeline, the diff.

# %%
browser = lab.browse(store, search="clean up")
browser

# %%
sorted((row["api"], row["prompt"], row["tool_names"][0]) for row in browser.page.rows)

# %% [markdown]
# Selecting a row (a click in the list, or `browser.select(id)`) draws it:

# %%
cleanup = browser.page.rows[0]["transaction_id"]
detail = browser.select(cleanup)
[section in detail for section in ("raw vs transformed", "hook timeline", "raw → transformed")]

# %% [markdown]
# ## Replay it through a candidate
#
# The candidate: no shell commands for this assistant. `store.cases(...)` turns the
# recorded transactions into evaluation cases (the request as it went upstream, the
# exact upstream chunks with their timing, and what the client was sent);
# `evaluate` replays each through the candidate and compares its output with what
# production sent (no upstream call).

# %%
import litellm  # noqa: F401  (the tool calls SimplePolicy hands a policy are litellm's: import it up front, not in a hook)

from luthien_lab.evaluate import evaluate
from luthien_lab.policies import ToolFilterPolicy

candidate = ToolFilterPolicy(deny=["run_shell"], blocked_message=" [no shell commands here]")
cases = store.cases()
result = evaluate({"no-shell": candidate}, cases, progress=False)
result.summary()[["cases", "change_rate", "block_rate", "error_rate"]].round(3)

# %%
changed = result.df[result.df["changed"]]
sorted(zip(changed["text"], changed["blocked"], strict=True))

# %% [markdown]
# Every row names the recorded transaction it replayed (`case`): the browser opens
# exactly those, to see what production sent them.

# %%
browser = lab.browse(store, ids=list(changed["case"]))
browser

# %%
browser.page.total, sorted(row["prompt"] for row in browser.page.rows)

# %% [markdown]
# The divergence report summarises it: how often the candidate changed, blocked or
# failed, by model and by day (`report.table`; here by model only, since the day is
# today's), with the transaction ids behind each cell.

# %%
from luthien_lab.evaluate import divergence_report

report = divergence_report(result)
report.summary(("candidate", "model"))

# %%
report.plot()

# %% [markdown]
# ## Run the candidate as a shadow
#
# The gateway config takes `shadow:` policies, in the same format as `policy:`. Each
# live request's upstream stream is fed to them too (no second upstream call); their
# output is recorded, linked to the live transaction, and never sent. Restart the
# gateway with the candidate as a shadow and replay the same traffic:

# %%
gateway.terminate()
gateway.wait(timeout=10)
shadow_config = work / "shadow.yaml"
shadow_config.write_text(
    live_config.read_text()
    + """
shadow:
  no-shell:
    class: "luthien_lab.policies.tool_filter:ToolFilterPolicy"
    config: {deny: [run_shell], blocked_message: " [no shell commands here]"}
"""
)
gateway = start(["serve", "--config", str(shadow_config), "--port", str(gateway_port)])
wait_ready(f"{base}/health")
watch = lab.watch(store_path, interval=0.2, shadows=True)
sent = send_traffic()
watch.wait_for(2 * sent, timeout=60)
watch.stop()
store.sql(
    "SELECT coalesce(shadow_name, 'live') AS side, status, count(*) AS transactions "
    "FROM transactions WHERE shadow_of IS NOT NULL "
    "OR transaction_id IN (SELECT shadow_of FROM transactions) GROUP BY ALL ORDER BY ALL"
)

# %% [markdown]
# A live transaction with a shadow shows both outputs side by side in the browser,
# with the word diff from what the user saw to what the candidate would have sent:

# %%
shadowed = lab.browse(
    store, search="clean up", where="transaction_id IN (SELECT shadow_of FROM transactions)"
)
shadowed

# %%
row = shadowed.page.rows[0]
html = shadowed.select(row["transaction_id"])
row["shadows"], "live vs shadow" in html, "differs from live" in html

# %% [markdown]
# ## The shadow period's divergence report
#
# `divergence_report(store, since=...)` pairs every shadow transaction with the live
# one it shadowed and compares what each sent. The ids it gives open in the browser:

# %%
shadow_report = divergence_report(store)
shadow_report.summary(("candidate", "model"))

# %%
blocked = lab.browse(store, ids=shadow_report.transactions("no-shell", kind="blocked"))
blocked.page.total, sorted(row["prompt"] for row in blocked.page.rows)

# %%
for process in (gateway, provider):
    process.terminate()
    process.wait(timeout=10)
