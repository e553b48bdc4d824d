# %% [markdown]
# # 1. Quick start
#
# Run one prompt through a policy and see everything it did: the raw and the
# transformed stream, which hook fired on which chunk, and what changed.
#
# No provider key is needed: with none set, luthien-lab answers from its bundled
# local provider, which speaks the real OpenAI and Anthropic wire protocols, so the
# call goes through litellm exactly as a live one would. Set `OPENAI_API_KEY` and
# the same cells talk to the real model.

# %%
from luthien_lab import UppercasePolicy, lab

PROMPT = "Look up the weather in Berlin and tell me what to wear."
result = lab.run(PROMPT, policy=UppercasePolicy(), store=None)
print(result)

# %% [markdown]
# `lab.run` returns a `RunResult`. Its plain parts are ordinary values:

# %%
print("raw:        ", result.raw_text)
print("transformed:", result.text)
result.tool_calls

# %% [markdown]
# ## The three views
#
# Displayed in a notebook, the result draws the raw and transformed streams side by
# side, the hook timeline (one lane per hook, ingress chunks along the x-axis, block
# boundaries shaded, the egress chunks each firing produced beneath; hover a mark for
# the chunk and the timing) and the word-level diff. Durations differ on every run,
# so nbval does not compare this cell's output.

# %%
# NBVAL_IGNORE_OUTPUT
result.show()

# %% [markdown]
# The timeline's data is a DataFrame too: one row per hook firing.

# %%
result.trace.groupby(["hook", "block_kind"], dropna=False).size().rename("firings")

# %% [markdown]
# ## Try it live
#
# The prompt runner streams both sides as chunks arrive. Policies you define in this
# notebook show up in its policy picker.

# %%
runner = lab.runner()
runner
