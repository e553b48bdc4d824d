# %% [markdown]
# # 7. Export a policy and serve it
#
# A policy written in a notebook becomes a production module: its source (captured
# by `%%policy`, since Python cannot read a notebook class's source back), the
# imports it uses, a YAML config for the gateway, and a pytest file that replays the
# cases you tried here. Then `luthien-lab serve` puts it behind an OpenAI-compatible
# endpoint.

# %%
# %load_ext luthien_lab.magics

# %%
# %%policy
from luthien_lab import SimplePolicy


class ShoutingWeather(SimplePolicy):
    """Uppercases answers and blocks weather lookups for Lima."""

    async def on_response_content(self, content, request):
        return content.upper()

    async def on_response_tool_call(self, tool_call, request):
        return None if "Lima" in tool_call.function.arguments else tool_call


# %% [markdown]
# Try it on a few prompts. The runs are recorded to a store; the export turns every
# recorded run of this class into a test case.

# %%
import tempfile
from pathlib import Path

from luthien_lab import lab
from luthien_lab.store import open_store

work = Path(tempfile.mkdtemp())
store = open_store(work / "tries.duckdb")
tried = [
    lab.run(prompt, policy=ShoutingWeather(), store=store)
    for prompt in (
        "Say hello.",
        "Look up the weather in Berlin and tell me what to wear.",
        "Check the weather in Paris, Tokyo and Lima all at once.",
    )
]
[(r.text, [c["name"] for c in r.tool_calls]) for r in tried]

# %%
from luthien_lab.exporting import export_policy

out = work / "shouting"
exported = export_policy(ShoutingWeather, out, store=store)
print(exported.case_count, "cases")
sorted(path.name for path in out.iterdir() if path.suffix in (".py", ".yaml", ".json"))

# %%
print(exported.module.read_text())

# %% [markdown]
# ## Serve it, test it
#
# `luthien-lab serve --config <name>.yaml` starts the OpenAI-compatible gateway (the
# exported module's folder goes on `PYTHONPATH`). It takes a few seconds to start
# (it imports litellm before it reports ready), so start it first:

# %%
import os
import socket
import subprocess
import sys

with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
server = subprocess.Popen(
    [
        sys.executable,
        "-m",
        "luthien_lab.cli",
        "serve",
        "--config",
        str(exported.config),
        "--port",
        str(port),
        "--no-record",
    ],
    env={**os.environ, "PYTHONPATH": str(out)},
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
base = f"http://127.0.0.1:{port}"

# %% [markdown]
# Meanwhile, the generated test replays every case, streaming and not, against the
# exported module imported fresh:

# %%
run = subprocess.run(
    [sys.executable, "-m", "pytest", "-q", "--color=no", "-p", "no:cacheprovider", str(exported.test)],
    capture_output=True,
    text=True,
    cwd=out,
)
print(run.returncode, run.stdout.strip().splitlines()[-1])

# %% [markdown]
# Any OpenAI client can use the gateway:

# %%
import time

import httpx
import openai

for _ in range(300):
    try:
        if httpx.get(base + "/health").status_code == 200:
            break
    except httpx.TransportError:
        time.sleep(0.1)
client = openai.OpenAI(base_url=base + "/v1", api_key="unused")
reply = client.chat.completions.create(
    model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "Say hello."}]
)
reply.choices[0].message.content

# %%
stream = client.chat.completions.create(
    model="openai/gpt-4o-mini",
    messages=[
        {"role": "user", "content": "Check the weather in Paris, Tokyo and Lima all at once."}
    ],
    stream=True,
)
arguments, finish = {}, None
for chunk in stream:
    if not chunk.choices:
        continue
    for call in chunk.choices[0].delta.tool_calls or []:
        arguments[call.index] = arguments.get(call.index, "") + (call.function.arguments or "")
    finish = chunk.choices[0].finish_reason or finish
sorted(arguments.values()), finish

# %%
server.terminate()
exit_code = server.wait(timeout=10)
