# %% [markdown]
# # 9. Policies for coding agents, in a chain
#
# Claude Code and Codex reach a policy as OpenAI-chat requests and stream chunks, with
# their own tools: Claude Code's `Bash`, `Write`, `Edit`, `Read`, `WebFetch`,
# `WebSearch`; Codex's `exec_command` and its freeform `apply_patch`. The agent
# policies read those tools (`luthien_lab.policies.agent_tools`) and decide per call:
#
# - `ShellRulesPolicy`: shell commands by rule, parsed (`&&`, `|`, `$(...)`, `bash -c`,
#   `sudo`, `xargs`, here-documents... cannot hide an `rm -rf /`);
# - `PathRulesPolicy`: file writes and reads by path, resolved against the agent's
#   working directory (`../` and `~` cannot step around a rule);
# - `NetworkRulesPolicy`: network tools and hosts (`WebFetch`, `curl`, `wget`, `ssh`...);
# - `RewriteRulesPolicy`: rewrites arguments (`pip install` becomes `uv pip install`);
# - `PlainRulesPolicy`: rules in plain English, judged by a model, answers cached.
#
# `SerialPolicy` chains them: each stage's output is the next stage's input, chunk by
# chunk. Here: build a chain for Claude Code, evaluate it on recorded agent traffic,
# look inside one transaction, and export it.

# %%
import collections

from luthien_lab.policies.agent_traffic import CASES, load_agent_traffic

recordings = load_agent_traffic()
cases = {case.id: case for case in CASES}
collections.Counter((case.agent, case.expect) for case in CASES)

# %% [markdown]
# Each recording is one request as the policy sees it (Claude Code's or Codex's real
# system prompt, working directory and tool definitions) and the stream the model
# answered with. One of them:

# %%
rec = recordings[1]
print(cases[rec.id].prompt, "->", cases[rec.id].calls)
print(sorted(rec.request)[:5], len(rec.request["tools"]), "tools")

# %% [markdown]
# ## The chain
#
# `%%policy` keeps the class's source so that it can be exported. The plain-English
# judge reads its answers from the cache recorded with the dataset; with a real model
# (`OPENAI_API_KEY`, or `api_base=`) it asks the model for anything not cached.

# %%
# %load_ext luthien_lab.magics

# %%
# %%policy
from luthien_lab import SerialPolicy
from luthien_lab.policies import (
    NetworkRulesPolicy,
    PathRulesPolicy,
    PlainRulesPolicy,
    RewriteRulesPolicy,
    ShellRulesPolicy,
)
from luthien_lab.policies.agent_traffic import AGENT_JUDGE_CACHE, PLAIN_INSTRUCTIONS


class ClaudeCodeGuard(SerialPolicy):
    """Shell, path and network rules, uv instead of pip, and plain-English rules."""

    def __init__(self):
        super().__init__(
            {
                "shell": ShellRulesPolicy(),
                "paths": PathRulesPolicy(allow_write=["{cwd}/**", "/tmp/**"]),
                "network": NetworkRulesPolicy(
                    allow_hosts=["docs.python.org", "github.com", "pypi.org", "files.pythonhosted.org"]
                ),
                "rewrite": RewriteRulesPolicy(
                    rules=[
                        {"name": "uv", "command": ["pip", "pip3"], "prefix": ["install"],
                         "replace_with": ["uv", "pip", "install"]},
                        {"name": "uv-m", "command": ["python", "python3"],
                         "prefix": ["-m", "pip", "install"], "replace_with": ["uv", "pip", "install"]},
                    ]
                ),
                "plain": PlainRulesPolicy(
                    instructions=PLAIN_INSTRUCTIONS, cache_path=str(AGENT_JUDGE_CACHE)
                ),
            }
        )


guard = ClaudeCodeGuard()
guard

# %% [markdown]
# ## Evaluate it on the Claude Code traffic
#
# Every case says what should happen: blocked, rewritten or left alone.

# %%
from luthien_lab.evaluate import evaluate

claude = [r for r in recordings if cases[r.id].agent == "claude_code"]
result = evaluate({"guard": guard}, claude, progress=False, baseline=None)
table = result.df[["case", "blocked", "changed", "finish_reason"]].copy()
table["expect"] = [cases[c].expect for c in table["case"]]
table["got"] = [
    "block" if blocked else ("rewrite" if changed else "allow")
    for blocked, changed in zip(table["blocked"], table["changed"], strict=True)
]
print((table["expect"] == table["got"]).sum(), "of", len(table), "as expected")
table[["case", "expect", "got", "finish_reason"]].head(12)

# %% [markdown]
# What the agent is told when a call is blocked, and what a rewrite looks like:

# %%
frame = result.df.set_index("case")
for case in ("cc-rm-sh-c", "cc-write-escape", "cc-fetch-paste", "cc-deploy"):
    print(case, "->", frame.loc[case, "text"].strip())
print(frame.loc["cc-pip-chained", "tool_calls"])

# %% [markdown]
# A chain of chunk-invariant policies is chunk-invariant: re-split every stream (one
# code point per chunk, halves, random cuts) and the output stays the same.

# %%
from luthien_lab.evaluate import check_chunk_invariance

report = check_chunk_invariance(guard, claude[::4], max_examples=5)
report.ok, report.cases_checked

# %% [markdown]
# ## Inside one transaction
#
# Each stage's hooks get their own group of lanes in the timeline; the rules'
# decisions are dots in their stage's group (hover for the reason).

# %%
from luthien_lab import PolicyOrchestrator, Request, ScriptedLLMClient
from luthien_lab.widgets import ResponseDiff, Timeline, TraceListener

two = next(r for r in recordings if r.id == "cc-two-calls")
listener = TraceListener()
orchestrator = PolicyOrchestrator(guard, ScriptedLLMClient(two.chunk_data), listeners=[listener])
async for _chunk in orchestrator.process_streaming_response(Request(**two.request)):
    pass
trace = listener.trace
timeline = Timeline(trace)
[(group.label, group.last - group.first + 1) for group in timeline.drawing.groups]

# %%
# NBVAL_IGNORE_OUTPUT
timeline

# %%
[(mark.name, mark.decision, timeline.drawing.lanes[mark.lane]) for mark in timeline.drawing.events]

# %% [markdown]
# What any stage changed: the diff between two stages' outputs (`"provider"` is what
# the model sent, `"final"` what Claude Code got).

# %%
from luthien_lab.policies.serial_view import stage_summaries, stage_trace

[(s["name"], len(s["tool_calls"]), s["finish_reason"]) for s in stage_summaries(trace)]

# %%
diff = ResponseDiff(stage_trace(trace, "provider", "shell"))
[(row["name"], row["status"]) for row in diff.result["tool_calls"]], diff.result["finish_reason"]

# %%
# NBVAL_IGNORE_OUTPUT
diff

# %% [markdown]
# ## Export it, and serve it
#
# The export writes the module, a YAML config and a pytest file that replays the
# cases given (here, a few recordings) against the exported module.

# %%
import subprocess
import sys
import tempfile
from pathlib import Path

from luthien_lab.exporting import export_policy

out = Path(tempfile.mkdtemp()) / "guard"
picked = [r for r in claude if r.id in ("cc-rm-root", "cc-pip", "cc-ls", "cc-read-ssh")]
exported = export_policy(
    ClaudeCodeGuard, out, cases=[{"request": r.request, "chunks": r.chunk_data} for r in picked]
)
print(exported.case_count, "cases,", exported.class_path)
run = subprocess.run(
    [sys.executable, "-m", "pytest", "-q", "--color=no", "-p", "no:cacheprovider", str(exported.test)],
    capture_output=True,
    text=True,
    cwd=out,
)
print(run.returncode, run.stdout.strip().splitlines()[-1].split(" in ")[0])

# %% [markdown]
# For `luthien-lab serve`, a chain can also be written as a YAML list under `policy:`
# (each entry a stage, in order) instead of a class:

# %%
from luthien_lab.policies import load_policy

config = """
policy:
  - {name: shell, class: "luthien_lab.policies.shell_rules:ShellRulesPolicy"}
  - name: rewrite
    class: "luthien_lab.policies.rewrite_rules:RewriteRulesPolicy"
    config:
      rules: [{name: uv, command: pip, prefix: [install], replace_with: [uv, pip, install]}]
gateway:
  upstream: {provider: anthropic, api_base: https://api.anthropic.com}
"""
path = Path(tempfile.mkdtemp()) / "policy.yaml"
path.write_text(config)
load_policy(path)
