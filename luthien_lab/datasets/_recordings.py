"""Recorded streams: litellm streams recorded chunk by chunk with their time offsets,
replayable as litellm ``ModelResponseStream`` objects.

Nothing here imports litellm: chunks are materialised as litellm objects only when
litellm is imported already (see :func:`Recording.chunks`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from luthien_lab.datasets._jsonl import DEFAULT_RECORDINGS, location, read_jsonl
from luthien_lab.errors import DatasetError
from luthien_lab.provider._script import ScriptedResponse, ScriptedToolCall

__all__ = ["Recording", "dump_recordings", "load_recordings"]

_RECORDING_KEYS = {
    "id",
    "provider",
    "model",
    "protocol",
    "request",
    "chunks",
    "offsets",
    "finish_reason",
    "response",
    "case",
    "recorded_at",
}


# ------------------------------------------------------------------------------------
# recordings
# ------------------------------------------------------------------------------------
@dataclass
class Recording:
    """One recorded litellm stream: the request, the chunks exactly as litellm yielded
    them (``chunk.model_dump(mode="json")``) and each chunk's time offset in seconds
    since the request was sent."""

    id: str
    model: str
    protocol: str
    request: dict[str, Any]
    chunk_data: list[dict[str, Any]]
    offsets: list[float]
    provider: str = "local"
    finish_reason: str | None = None
    response: dict[str, Any] | None = None
    case: str | None = None
    recorded_at: str | None = None

    @classmethod
    def from_dict(
        cls, obj: Mapping[str, Any], *, source: str = "<dict>", lineno: int | None = None
    ) -> Recording:
        where = location(source, lineno)
        unknown = set(obj) - _RECORDING_KEYS
        if unknown:
            raise DatasetError(
                f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_RECORDING_KEYS)}"
            )
        for key in ("id", "model", "protocol"):
            if not isinstance(obj.get(key), str) or not obj[key]:
                raise DatasetError(f"{where}: {key!r} must be a non-empty string")
        if obj["protocol"] not in ("openai", "anthropic"):
            raise DatasetError(f"{where}: 'protocol' must be 'openai' or 'anthropic'")
        request, chunks, offsets = obj.get("request"), obj.get("chunks"), obj.get("offsets")
        if not isinstance(request, dict) or not isinstance(request.get("messages"), list):
            raise DatasetError(f"{where}: 'request' must be an object with a 'messages' list")
        if not isinstance(chunks, list) or not all(isinstance(c, dict) for c in chunks):
            raise DatasetError(f"{where}: 'chunks' must be a list of chunk objects")
        if offsets is None:
            offsets = [0.0] * len(chunks)
        if (
            not isinstance(offsets, list)
            or len(offsets) != len(chunks)
            or not all(isinstance(o, (int, float)) for o in offsets)
        ):
            raise DatasetError(
                f"{where}: 'offsets' must be a list of {len(chunks)} numbers (one per chunk)"
            )
        if any(b < a for a, b in itertools.pairwise(offsets)):
            raise DatasetError(f"{where}: 'offsets' must not decrease")
        response = obj.get("response")
        if response is not None and not isinstance(response, dict):
            raise DatasetError(f"{where}: 'response' must be an object or null")
        return cls(
            id=obj["id"],
            model=obj["model"],
            protocol=obj["protocol"],
            request=request,
            chunk_data=chunks,
            offsets=[float(o) for o in offsets],
            provider=str(obj.get("provider") or "local"),
            finish_reason=obj.get("finish_reason"),
            response=response,
            case=obj.get("case"),
            recorded_at=obj.get("recorded_at"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "provider": self.provider,
            "model": self.model,
            "protocol": self.protocol,
            "case": self.case,
            "request": self.request,
            "chunks": self.chunk_data,
            "offsets": self.offsets,
            "finish_reason": self.finish_reason,
        }
        if self.response is not None:
            out["response"] = self.response
        if self.recorded_at is not None:
            out["recorded_at"] = self.recorded_at
        return out

    @property
    def prompt(self) -> str:
        from luthien_lab.provider._server import last_user_prompt

        return last_user_prompt(self.request.get("messages"))[0]

    def chunks(self) -> list[Any]:
        """The chunks as stream chunk objects: litellm ``ModelResponseStream`` when
        litellm is imported, else their litellm-free equivalent (same fields, see
        :mod:`luthien_lab.streaming.lite`), so replaying never imports litellm."""
        from luthien_lab.clients._scripted import to_chunk

        return [to_chunk(dict(c)) for c in self.chunk_data]

    def text(self) -> str:
        """The concatenated text content of the stream."""
        return "".join(
            (choice.get("delta") or {}).get("content") or ""
            for c in self.chunk_data
            for choice in c.get("choices") or []
        )

    async def replay(self, pacing: str = "fast") -> AsyncIterator[Any]:
        """Yield the chunks again; ``pacing="original"`` waits as long as the recording
        did between chunks, ``"fast"`` does not wait."""
        if pacing not in ("fast", "original"):
            raise ValueError(f"pacing must be 'fast' or 'original', not {pacing!r}")
        loop = asyncio.get_running_loop()
        start = loop.time()
        for chunk, offset in zip(self.chunks(), self.offsets, strict=True):
            if pacing == "original":
                wait = start + offset - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            yield chunk

    def to_script(self) -> ScriptedResponse:
        """A :class:`ScriptedResponse` that makes the local provider send this stream again
        (same text/thinking/refusal/tool-argument chunk boundaries, recorded offsets)."""
        thinking: list[tuple[str, float]] = []
        text: list[tuple[str, float]] = []
        refusal: list[tuple[str, float]] = []
        tools: dict[int, dict[str, Any]] = {}
        tool_offsets: list[float] = []
        parallel = False
        signature: str | None = None
        usage: dict[str, int] | None = None
        finish: str | None = self.finish_reason
        for chunk, offset in zip(self.chunk_data, self.offsets, strict=False):
            if chunk.get("usage"):
                u = chunk["usage"]
                usage = {
                    "prompt_tokens": int(u.get("prompt_tokens") or 0),
                    "completion_tokens": int(u.get("completion_tokens") or 0),
                }
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
                if delta.get("reasoning_content"):
                    thinking.append((delta["reasoning_content"], offset))
                for block in delta.get("thinking_blocks") or []:
                    if isinstance(block, dict) and block.get("signature"):
                        signature = block["signature"]
                if delta.get("content"):
                    text.append((delta["content"], offset))
                if delta.get("refusal"):
                    refusal.append((delta["refusal"], offset))
                calls = delta.get("tool_calls") or []
                complete = [c for c in calls if (c.get("function") or {}).get("name")]
                if len(complete) > 1:
                    parallel = True
                for call in calls:
                    idx = int(call.get("index") or 0)
                    fn = call.get("function") or {}
                    slot = tools.setdefault(idx, {"id": None, "name": "", "fragments": []})
                    if call.get("id"):
                        slot["id"] = call["id"]
                    if fn.get("name"):
                        slot["name"] = fn["name"]
                        if not parallel:
                            tool_offsets.append(offset)
                    if fn.get("arguments"):
                        slot["fragments"].append(fn["arguments"])
                        if not parallel:
                            tool_offsets.append(offset)
                if parallel and calls and not tool_offsets:
                    tool_offsets.append(offset)
        tool_calls = [
            ScriptedToolCall(
                name=slot["name"],
                id=slot["id"],
                arguments="".join(slot["fragments"]),
                argument_chunks=slot["fragments"],
            )
            for _, slot in sorted(tools.items())
        ]
        refusal_text = "".join(r for r, _ in refusal) or None
        offsets = (
            [o for _, o in thinking] + [o for _, o in text] + [o for _, o in refusal] + tool_offsets
        )
        return ScriptedResponse(
            thinking_chunks=[t for t, _ in thinking] or None,
            text_chunks=[t for t, _ in text],
            refusal=refusal_text,
            refusal_chunks=[r for r, _ in refusal] or None,
            signature=signature,
            tool_calls=tool_calls,
            parallel_tool_calls=parallel,
            finish_reason=finish,
            usage=usage,
            offsets=offsets,
        )


def load_recordings(path: str | os.PathLike[str] | None = None) -> list[Recording]:
    """Load recordings from a JSONL file or a folder of ``*.jsonl`` files (default: the
    bundled ``recordings.jsonl`` (:data:`DEFAULT_RECORDINGS`))."""
    p = Path(path) if path is not None else DEFAULT_RECORDINGS
    files = sorted(p.glob("*.jsonl")) if p.is_dir() else [p]
    out: list[Recording] = []
    ids: dict[str, str] = {}
    for f in files:
        for lineno, obj in read_jsonl(f):
            rec = Recording.from_dict(obj, source=str(f), lineno=lineno)
            if rec.id in ids:
                raise DatasetError(f"{f}:{lineno}: duplicate recording id {rec.id!r}")
            ids[rec.id] = f"{f}:{lineno}"
            out.append(rec)
    return out


def dump_recordings(recordings: Iterable[Recording], path: str | os.PathLike[str]) -> Path:
    """Write recordings as JSONL (one per line)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r.to_dict(), ensure_ascii=False, separators=(",", ":")) for r in recordings]
    p.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return p
