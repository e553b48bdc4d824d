# %% [markdown]
# # 5. Recordings: ask the DuckDB store anything
#
# Every transaction, chunk and hook firing is recorded to DuckDB. Queries return
# pandas DataFrames; `sql()` takes anything else. Here we record a few runs into a
# fresh store and ask: which policies changed what, what each hook cost, and which
# tool calls were blocked.

# %%
import tempfile
from pathlib import Path

from luthien_lab import (
    NoOpPolicy,
    Request,
    SimplePolicy,
    UppercasePolicy,
    create_default_orchestrator,
)
from luthien_lab.datasets import Dataset
from luthien_lab.store import open_store

folder = Path(tempfile.mkdtemp())
store = open_store(folder / "runs.duckdb")
prompts = Dataset.load()  # the bundled prompt cases


class NoWeather(SimplePolicy):
    """Blocks every get_weather call."""

    async def on_response_tool_call(self, tool_call, request):
        return None if tool_call.function.name == "get_weather" else tool_call


# %%
for policy in (NoOpPolicy(), UppercasePolicy(), NoWeather()):
    orchestrator = create_default_orchestrator(policy, store=store)
    for case_id in ("text-short", "split-pattern", "tool-several", "text-then-tool"):
        sample = prompts[case_id]
        request = Request(**sample.request(model="openai/gpt-4o-mini", stream=True))
        async for _chunk in orchestrator.process_streaming_response(request):
            pass
    orchestrator.listeners[0].flush()

store.transactions()[
    ["policy_class", "model", "status", "ingress_chunk_count", "egress_chunk_count"]
]

# %% [markdown]
# ## Which policies changed what
#
# The `payloads` table holds the original and the final response of each
# transaction: compare them in SQL.

# %%
store.sql(
    """
    SELECT split_part(t.policy_class, '.', -1) AS policy,
           count(*) AS transactions,
           count(*) FILTER (WHERE p.original_response <> p.final_response) AS changed,
           count(*) FILTER (WHERE t.status = 'blocked') AS blocked
    FROM transactions t JOIN payloads p USING (transaction_id)
    GROUP BY policy ORDER BY policy
    """
)

# %% [markdown]
# ## Hook firings per policy
#
# The hooks table has one row per firing, with its chunk, block and duration. Counts
# are deterministic; durations are not, so we show them only as a share.

# %%
store.sql(
    """
    SELECT split_part(t.policy_class, '.', -1) AS policy, h.hook, count(*) AS firings
    FROM hooks h JOIN transactions t USING (transaction_id)
    GROUP BY policy, h.hook ORDER BY policy, h.hook
    """
)

# %% [markdown]
# ## Blocked tool calls
#
# Policies report what they block as events.

# %%
store.sql(
    """
    SELECT split_part(t.policy_class, '.', -1) AS policy,
           json_extract_string(e.data, '$.name') AS tool, count(*) AS blocked_calls
    FROM events e JOIN transactions t USING (transaction_id)
    WHERE e.name = 'tool_call_blocked'
    GROUP BY policy, tool ORDER BY policy, tool
    """
)

# %% [markdown]
# ## Export to Parquet
#
# Any table (or query) exports to Parquet, for pandas, Spark or Ray elsewhere.

# %%
paths = store.export_all(folder / "parquet")
sorted(Path(p).name for p in paths)
