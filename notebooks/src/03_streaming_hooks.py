# %% [markdown]
# # 3. Streaming hooks in depth
#
# A `SimplePolicy` sees whole blocks. A full `Policy` sees every chunk as it streams
# and decides what to emit, and when. Here we redact e-mail addresses *while the
# answer streams*, without letting an address slip through when it is split across
# chunks, and we look at exactly which hook fired on which chunk and what it emitted.
#
# Everything runs offline against the bundled local provider.

# %%
import re

import pandas as pd

from luthien_lab import CallbackListener, LiteLLMClient, Policy, PolicyOrchestrator, Request
from luthien_lab.provider import shared_local_provider
from luthien_lab.provider import ScriptedResponse
from luthien_lab.streaming import helpers

# %% [markdown]
# The local provider answers this prompt with a scripted text, cut into 5-character
# chunks, so both addresses are split across chunks on the wire.

# %%
PROMPT = "Who should I contact about the outage?"
ANSWER = "Write to ops-team@example.com or, after hours, to oncall@example.org. Thanks!"
shared_local_provider().add_case(PROMPT, ScriptedResponse(text=ANSWER, chunk_size=5))
request = Request(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}])

# %% [markdown]
# ## A naive policy: redact within each chunk
#
# It looks right, and it is wrong: the pattern never sees a whole address.

# %%
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[a-z]{2,}")


class NaiveRedact(Policy):
    async def on_chunk_received(self, ctx):
        chunk = helpers.get_last_ingress_chunk(ctx)
        delta = chunk.choices[0].delta if chunk.choices else None
        if delta is not None and delta.content:
            await helpers.send_text(ctx, EMAIL.sub("[email]", delta.content))
        else:
            await helpers.send_chunk(ctx, chunk)


async def answer(policy, listeners=()):
    orchestrator = PolicyOrchestrator(policy, LiteLLMClient(), listeners=list(listeners))
    text = ""
    async for chunk in orchestrator.process_streaming_response(request):
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    return text


print(await answer(NaiveRedact()))

# %% [markdown]
# ## A streaming redactor with a bounded hold-back
#
# `on_content_delta` fires for every piece of text. The policy emits everything up to
# the last space and holds back the tail, which might be the start of an address; at
# `on_content_complete` it flushes the rest. Per-stream state lives in
# `ctx.scratchpad`, never on `self`: one policy instance serves many streams at once.


# %%
class StreamingRedact(Policy):
    async def on_chunk_received(self, ctx):
        chunk = helpers.get_last_ingress_chunk(ctx)
        delta = chunk.choices[0].delta if chunk.choices else None
        if delta is None or not delta.content:
            await helpers.send_chunk(ctx, chunk)  # role, tool calls, finish, usage

    async def on_content_delta(self, ctx):
        pending = ctx.scratchpad.get("pending", "") + ctx.ingress_state.current_block.last_delta
        cut = pending.rfind(" ") + 1
        if cut:
            await helpers.send_text(ctx, EMAIL.sub("[email]", pending[:cut]))
        ctx.scratchpad["pending"] = pending[cut:]

    async def on_content_complete(self, ctx):
        rest = ctx.scratchpad.pop("pending", "")
        if rest:
            await helpers.send_text(ctx, EMAIL.sub("[email]", rest))


print(await answer(StreamingRedact()))

# %% [markdown]
# ## Which hook fired on which chunk, and what it emitted
#
# Every step is reported to listeners; here a callback collects the hook firings.
# The same events feed the DuckDB recorder and the live timeline widget.

# %%
firings = []


def on_event(event, transaction_id, payload):
    if event == "hook_fired":
        firings.append(
            {
                "chunk": payload["chunk_index"],
                "hook": payload["hook"],
                "block": payload["block"].kind if payload["block"] is not None else "",
                "emitted": payload["egress_end"] - payload["egress_start"],
            }
        )


await answer(StreamingRedact(), [CallbackListener(on_event)])
trace = pd.DataFrame(firings)
trace.head(12)

# %%
trace.pivot_table(index="hook", values="emitted", aggfunc=["count", "sum"])
