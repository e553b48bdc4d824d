# %% [markdown]
# # 2. Author a policy with `SimplePolicy`
#
# `SimplePolicy` hands you whole blocks: the complete response text and each
# complete tool call. You return the new text, or a new tool call, or `None` to block
# the call. The streaming is done for you: unchanged blocks go out as the provider's
# original chunks, changed ones as new chunks, and the finish reason is fixed when
# you block every tool call.
#
# Write `%%policy` at the top of the cell that defines the class: it remembers the
# source so that notebook 7 can export it to a production module.

# %%
# %load_ext luthien_lab.magics

# %%
# %%policy
from luthien_lab import SimplePolicy


class PoliteWeather(SimplePolicy):
    """Version 1: softens the text."""

    async def on_response_content(self, content, request):
        return content.replace("Let me check", "Allow me to check")


# %%
from luthien_lab import lab

PROMPT = "Look up the weather in Berlin and tell me what to wear."
v1 = lab.run(PROMPT, policy=PoliteWeather(), store=None)
print(v1.raw_text)
print(v1.text)
v1.tool_calls

# %% [markdown]
# ## Edit, rerun, compare
#
# Version 2 also refuses to let the model call `get_weather` for Berlin. Define it,
# rerun the same prompt, and compare both runs.

# %%
# %%policy
import json

from luthien_lab import SimplePolicy


class PoliteWeatherV2(SimplePolicy):
    """Version 2: softens the text and blocks weather lookups for Berlin."""

    async def on_response_content(self, content, request):
        return content.replace("Let me check", "Allow me to check")

    async def on_response_tool_call(self, tool_call, request):
        args = json.loads(tool_call.function.arguments or "{}")
        if tool_call.function.name == "get_weather" and args.get("city") == "Berlin":
            return None
        return tool_call


# %%
v2 = lab.run(PROMPT, policy=PoliteWeatherV2(), store=None)
import pandas as pd

pd.DataFrame(
    {
        "run": ["v1", "v2"],
        "text": [v1.text, v2.text],
        "tool calls": [len(v1.tool_calls), len(v2.tool_calls)],
        "status": [v1.status, v2.status],
    }
)

# %% [markdown]
# The diff view marks the word-level change and the blocked tool call:

# %%
# NBVAL_IGNORE_OUTPUT
v2.diff()

# %% [markdown]
# ## Streaming and non-streaming agree
#
# The same policy gives the same final response either way.

# %%
v2_full = lab.run(PROMPT, policy=PoliteWeatherV2(), stream=False, store=None)
(v2_full.text, v2_full.tool_calls) == (v2.text, v2.tool_calls)
