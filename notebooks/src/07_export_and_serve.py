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
# Try it on a few prompts; the runs become the exported test's cases.

# %%
from luthien_lab import lab

tried = [
    lab.run(prompt, policy=ShoutingWeather(), store=None)
    for prompt in (
        "Say hello.",
        "Look up the weather in Berlin and tell me what to wear.",
        "Check the weather in Paris, Tokyo and Lima all at once.",
    )
]
[(r.text, [c["name"] for c in r.tool_calls]) for r in tried]

# %%
import tempfile
from pathlib import Path

from luthien_lab.export import export_policy

out = Path(tempfile.mkdtemp()) / "shouting"
exported = export_policy(ShoutingWeather, out, cases=tried)
sorted(path.name for path in out.iterdir())

# %%
print((out / "shouting_weather.py").read_text())

# %% [markdown]
# The generated test replays every case, streaming and not, against the exported
# module imported fresh:

# %%
import subprocess
import sys

run = subprocess.run(
    [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(out)],
    capture_output=True,
    text=True,
)
print(run.returncode, run.stdout.strip().splitlines()[-1])

# %% [markdown]
# ## Serve it
#
# `luthien-lab serve --config policy.yaml` starts the gateway. Here it runs in this
# kernel; any OpenAI client can use it.

# %%
import openai

from luthien_lab.gateway import Gateway

gateway = Gateway.from_config(out / "policy.yaml", store=None).start()
client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused")
reply = client.chat.completions.create(
    model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "Say hello."}]
)
reply.choices[0].message.content

# %%
stream = client.chat.completions.create(
    model="openai/gpt-4o-mini",
    messages=[{"role": "user", "content": "Check the weather in Paris, Tokyo and Lima all at once."}],
    stream=True,
)
calls = {}
finish = None
for chunk in stream:
    for call in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
        calls.setdefault(call.index, "")
        calls[call.index] += call.function.arguments or ""
    if chunk.choices and chunk.choices[0].finish_reason:
        finish = chunk.choices[0].finish_reason
sorted(calls.values()), finish

# %%
gateway.stop()
