"""Stores of recorded transactions for the browser tests, recorded the way the
gateway records (an orchestrator with a recorder, tags for the API and shadows)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from luthien_lab import PolicyOrchestrator, Request, ScriptedLLMClient
from luthien_lab.events import PipelineListener, TransactionInfo
from luthien_lab.policies.passthrough import NoOpPolicy
from luthien_lab.policies.uppercase import UppercasePolicy
from luthien_lab.store import DuckDBRecorder
from tests.support import text_stream, tool_chunk


class Tagger(PipelineListener):
    """Sets the transaction's tags when it starts (as the gateway does)."""

    def __init__(self, tags: dict[str, Any]) -> None:
        self.tags = tags

    def transaction_started(self, info: TransactionInfo) -> None:
        info.tags.update(self.tags)


def record(
    store: Any,
    prompt: str,
    pieces: list[str],
    *,
    policy: Any = None,
    model: str = "gpt-4o-mini",
    tags: dict[str, Any] | None = None,
    tool: tuple[str, str] | None = None,
) -> str:
    """Record one streamed transaction; returns its id."""
    chunks = text_stream(*pieces, finish="tool_calls" if tool else "stop")
    if tool:
        finish = chunks.pop()
        chunks += [tool_chunk(0, id="call_1", name=tool[0], args=tool[1]), finish]
    tid = uuid.uuid4().hex
    recorder = DuckDBRecorder(store)
    orchestrator = PolicyOrchestrator(
        policy or NoOpPolicy(),
        ScriptedLLMClient(chunks),
        listeners=[Tagger(tags or {"api": "chat"}), recorder],
    )
    request = Request(model=model, messages=[{"role": "user", "content": prompt}], stream=True)

    async def run() -> None:
        async for _ in orchestrator.process_streaming_response(request, tid):
            pass

    asyncio.run(run())
    recorder.close()
    return tid


def fill(store: Any) -> dict[str, str]:
    """Six live transactions (two APIs, two models, two policies, one blocked-looking
    tool call) and two shadows of the first; returns ids by name."""
    ids = {
        "weather": record(
            store,
            "What is the weather in Paris?",
            ["Sunny ", "in Paris"],
            policy=UppercasePolicy(),
        ),
        "hello": record(store, "Say hello", ["Hello ", "there"]),
        "lima": record(
            store,
            "Look up Lima",
            ["Looking up"],
            tool=("get_weather", '{"city": "Lima"}'),
            model="claude-haiku",
            tags={"api": "messages", "team": "red"},
        ),
    }
    for n in range(3):
        ids[f"filler{n}"] = record(store, f"filler prompt {n}", [f"filler answer {n}"])
    live = ids["weather"]
    ids["shadow_a"] = record(
        store,
        "What is the weather in Paris?",
        ["Sunny ", "in Paris"],
        policy=UppercasePolicy(),
        tags={"api": "chat", "shadow_of": live, "shadow": "candidate-a"},
    )
    ids["shadow_b"] = record(
        store,
        "What is the weather in Paris?",
        ["Rainy ", "in Paris"],
        tags={"api": "chat", "shadow_of": live, "shadow": "candidate-b", "shadow_dropped": 2},
    )
    return ids
