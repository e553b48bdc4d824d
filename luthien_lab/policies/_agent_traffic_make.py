"""Generating ``luthien_lab/datasets/data/agent_traffic*.{jsonl,json}`` (see :mod:`.agent_traffic`).

Deterministic: ids, ``created`` and offsets are normalised as in
``luthien_lab.datasets.record``, and the judge's answers come from local-provider rules.
Reads the CLI recordings under ``tests/fixtures`` and the gateway's request views, so
it runs from a development checkout.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

from luthien_lab.policies import agent_traffic as at

__all__ = ["base_request", "make_agent_traffic"]

_TEXT_LIMIT = 600
_DESCRIPTION_LIMIT = 60


def _trim(value: Any, key: str = "") -> Any:
    """Long prompt texts and tool descriptions shortened (the rest kept as recorded)."""
    if isinstance(value, dict):
        return {k: _trim(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_trim(v, key) for v in value]
    if isinstance(value, str):
        limit = _DESCRIPTION_LIMIT if key == "description" else _TEXT_LIMIT
        if key in ("text", "description", "content") and len(value) > limit:
            return value[:limit] + " [...]"
    return value


def base_request(agent: str) -> dict[str, Any]:
    """The request a policy sees from the agent's recorded CLI request (trimmed)."""
    if agent == "claude_code":
        from luthien_lab.gateway._anthropic_request import native_view as anthropic_view

        line = (at._FIXTURES / "claude_code" / "all_tools.jsonl").read_text().splitlines()[0]
        view, _ = anthropic_view(json.loads(line)["body"], at.MODELS[agent])
    else:
        from luthien_lab.gateway._responses_request import native_view as responses_view

        path = at._FIXTURES / "codex" / "apply_patch_round_trip.jsonl"
        view, _ = responses_view(
            json.loads(path.read_text().splitlines()[0])["body"], at.MODELS[agent]
        )
    view.pop("metadata", None)  # Claude Code's device and session ids
    view.pop("client_metadata", None)  # Codex's installation and thread ids
    view.pop("prompt_cache_key", None)
    for message in view["messages"]:
        message.pop("id", None)
    return _trim(view)


def _with_prompt(base: dict[str, Any], prompt: str) -> dict[str, Any]:
    request = copy.deepcopy(base)
    for message in reversed(request["messages"]):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, list) and content and isinstance(content[-1], dict):
            content[-1] = {"type": "text", "text": prompt}
        else:
            message["content"] = prompt
        break
    request["stream"] = True
    return request


def _script(case: at.AgentCase) -> Any:
    from luthien_lab.provider import ScriptedResponse, ScriptedToolCall

    prefix = "toolu" if case.agent == "claude_code" else "call"
    slug = re.sub(r"[^A-Za-z0-9]", "", case.id)
    calls = [
        ScriptedToolCall(name=name, arguments=args, id=f"{prefix}_{slug}{i}")
        for i, (name, args) in enumerate(case.calls)
    ]
    return ScriptedResponse(
        text=case.text, tool_calls=calls, usage={"prompt_tokens": 900, "completion_tokens": 40}
    )


def _function_tools(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in request.get("tools") or [] if t.get("type") == "function"]


async def _record(provider: Any, case: at.AgentCase, request: dict[str, Any]) -> Any:
    from luthien_lab.datasets import Recording
    from luthien_lab.datasets._record import _import_litellm, _normalize
    from luthien_lab.provider import SCRIPT_HEADER

    litellm = _import_litellm()
    model = at.MODELS[case.agent]
    key = provider.script(_script(case), key=case.id)
    response = await litellm.acompletion(
        model=model,
        messages=[{"role": "user", "content": case.prompt}],
        tools=_function_tools(request) or None,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={SCRIPT_HEADER: key},
        num_retries=0,
        timeout=30,
        **provider.litellm_kwargs(model),
    )
    chunks = [chunk.model_dump(mode="json") async for chunk in response]
    finish = next(
        (
            c["choices"][0]["finish_reason"]
            for c in reversed(chunks)
            if c.get("choices") and c["choices"][0].get("finish_reason")
        ),
        None,
    )
    protocol = "anthropic" if case.agent == "claude_code" else "openai"
    rec = Recording(
        case.id,
        model,
        protocol,
        request,
        chunks,
        [0.0] * len(chunks),
        "local",
        finish,
        case=case.id,
    )
    _normalize(rec)
    return rec


def _prompt_has(marker: str) -> Any:
    return lambda request: marker in request.prompt


async def _judge_cache(recordings: list[Any], path: Path) -> None:
    """Ask the plain-English judge about every call, through the local provider (its
    rules answer ``block`` for the cases that say so), caching into ``path``."""
    from luthien_lab.evaluate import evaluate_async
    from luthien_lab.provider import LocalProvider

    if path.exists():
        path.unlink()
    with LocalProvider() as provider:
        provider.set_default('{"decision": "allow", "reason": "the call follows the rules"}')
        for case in at.CASES:
            if case.judge != "block":
                continue
            for _name, args in case.calls:
                marker = args if isinstance(args, str) else next(iter(args.values()))
                answer = {"decision": "block", "reason": f"`{marker}` {case.judge_reason}"}
                provider.add_rule(_prompt_has(str(marker)), json.dumps(answer))
        # The judge alone, and as the last stage of the chain (it sees rewritten calls).
        policies = at.reference_policies(path, api_base=provider.openai_base, api_key="sk-local")
        chosen = {"plain": policies["plain"], "chain": policies["chain"]}
        await evaluate_async(chosen, recordings, progress=False, baseline=None, concurrency=1)


async def make_agent_traffic(out: Path | None = None) -> list[Any]:
    """Record every case (see the module doc); returns the recordings."""
    from luthien_lab.datasets import dump_recordings
    from luthien_lab.evaluate import evaluate_async, save_golden
    from luthien_lab.provider import LocalProvider

    os.environ["LUTHIEN_LAB_PROVIDER"] = "local"
    bases = {agent: base_request(agent) for agent in at.MODELS}
    recordings = []
    with LocalProvider() as provider:
        for case in at.CASES:
            recordings.append(
                await _record(provider, case, _with_prompt(bases[case.agent], case.prompt))
            )
    dump_recordings(recordings, out or at.AGENT_TRAFFIC)
    await _judge_cache(recordings, at.AGENT_JUDGE_CACHE)
    result = await evaluate_async(
        at.reference_policies(), recordings, progress=False, baseline=None
    )
    save_golden(result, at.AGENT_GOLDEN)
    return recordings
