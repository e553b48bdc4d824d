# %% [markdown]
# # 6. Evaluate a policy on a dataset, and compare two
#
# Before a policy ships, run it over recorded traffic: which cases it changes, blocks
# or breaks, and what latency it adds. Then fuzz the chunk boundaries: a policy whose
# output depends on how the stream happened to be split has a bug that only shows up
# in production.

# %%
import re

from luthien_lab import Policy, UppercasePolicy
from luthien_lab.datasets import load_recordings
from luthien_lab.evaluate import check_chunk_invariance, evaluate
from luthien_lab.policies import StringReplacePolicy
from luthien_lab.streaming import helpers

recordings = load_recordings()  # the bundled recordings
len(recordings)

# %% [markdown]
# ## Two policies side by side

# %%
policies = {
    "uppercase": UppercasePolicy(),
    "redact-openai": StringReplacePolicy(replacements={"OpenAI": "[vendor]"}),
}
result = evaluate(policies, recordings, progress=False)
result.summary()[["cases", "change_rate", "block_rate", "error_rate"]].round(3)

# %% [markdown]
# Per case, per policy: changed or not, the final text, the tool calls, any error.

# %%
frame = result.df
frame[frame["changed"]][["case", "policy", "text"]].head(8)

# %% [markdown]
# Latency added against a passthrough run of the same case varies from run to run,
# so it is shown but not checked.

# %%
# NBVAL_IGNORE_OUTPUT
result.plot()

# %% [markdown]
# ## Chunk-boundary fuzzing
#
# A naive redactor replaces within each chunk. The recorded stream splits "OpenAI"
# only sometimes, so it passes on the recording; the fuzzer re-splits every stream
# (down to one character per chunk, tool-call arguments anywhere, multi-byte
# characters between code points) and shrinks a failure to a minimal split.


# %%
class NaiveRedact(Policy):
    async def on_chunk_received(self, ctx):
        chunk = helpers.get_last_ingress_chunk(ctx)
        delta = chunk.choices[0].delta if chunk.choices else None
        if delta is not None and delta.content:
            await helpers.send_text(ctx, re.sub("OpenAI", "[vendor]", delta.content))
        else:
            await helpers.send_chunk(ctx, chunk)


naive = check_chunk_invariance(NaiveRedact(), recordings, max_examples=30, seed=0)
print(naive.ok)
failure = naive.failures[0]
print(failure.case)
print(failure.split)

# %% [markdown]
# The built-in `StringReplacePolicy` holds back just enough text to see a match
# across chunks, and passes:

# %%
check_chunk_invariance(policies["redact-openai"], recordings, max_examples=30, seed=0).ok
