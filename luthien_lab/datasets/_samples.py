"""Prompt cases: what a user asks, and the scripted answer the local provider gives."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from luthien_lab.datasets._jsonl import DEFAULT_PROMPTS, location, read_jsonl
from luthien_lab.errors import DatasetError
from luthien_lab.provider._script import ScriptedResponse

__all__ = ["Dataset", "Sample"]

_SAMPLE_KEYS = {"id", "prompt", "system", "tools", "tags", "response", "metadata"}


# ------------------------------------------------------------------------------------
# prompt cases
# ------------------------------------------------------------------------------------
@dataclass
class Sample:
    """One prompt case: what a user asks, and what the local provider answers."""

    id: str
    prompt: str
    system: str | None = None
    tools: list[dict[str, Any]] | None = None
    tags: list[str] = field(default_factory=list)
    response: ScriptedResponse = field(default_factory=ScriptedResponse)
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(
        cls, obj: Mapping[str, Any], *, source: str = "<dict>", lineno: int | None = None
    ) -> Sample:
        where = location(source, lineno)
        unknown = set(obj) - _SAMPLE_KEYS
        if unknown:
            raise DatasetError(
                f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_SAMPLE_KEYS)}"
            )
        for key in ("id", "prompt"):
            if not isinstance(obj.get(key), str) or not obj[key]:
                raise DatasetError(f"{where}: {key!r} must be a non-empty string")
        tags = obj.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise DatasetError(f"{where}: 'tags' must be a list of strings")
        tools = obj.get("tools")
        if tools is not None and not isinstance(tools, list):
            raise DatasetError(f"{where}: 'tools' must be a list of OpenAI tool objects")
        system = obj.get("system")
        if system is not None and not isinstance(system, str):
            raise DatasetError(f"{where}: 'system' must be a string")
        try:
            response = ScriptedResponse.model_validate(obj.get("response") or {})
        except ValidationError as exc:
            raise DatasetError(f"{where}: bad 'response' for {obj['id']!r}: {exc}") from None
        return cls(
            id=obj["id"],
            prompt=obj["prompt"],
            system=system,
            tools=tools,
            tags=list(tags),
            response=response,
            metadata=dict(obj.get("metadata") or {}),
        )

    @property
    def messages(self) -> list[dict[str, Any]]:
        """OpenAI-format messages: the system prompt (if any) then the user prompt."""
        out: list[dict[str, Any]] = []
        if self.system:
            out.append({"role": "system", "content": self.system})
        out.append({"role": "user", "content": self.prompt})
        return out

    def request(self, model: str = "openai/gpt-4o-mini", stream: bool = True) -> dict[str, Any]:
        """litellm ``completion`` kwargs for this case."""
        req: dict[str, Any] = {"model": model, "messages": self.messages, "stream": stream}
        if self.tools:
            req["tools"] = self.tools
        return req

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "prompt": self.prompt}
        if self.system:
            out["system"] = self.system
        if self.tools:
            out["tools"] = self.tools
        out["tags"] = self.tags
        out["response"] = self.response.model_dump(mode="json", exclude_defaults=True)
        if self.metadata:
            out["metadata"] = self.metadata
        return out


class Dataset:
    """An ordered collection of :class:`Sample` (indexable by position or id)."""

    def __init__(self, samples: Iterable[Sample], *, path: str | os.PathLike[str] | None = None):
        self.samples: list[Sample] = list(samples)
        self.path = Path(path) if path is not None else None
        seen: set[str] = set()
        for s in self.samples:
            if s.id in seen:
                raise DatasetError(f"{self.path or '<dataset>'}: duplicate sample id {s.id!r}")
            seen.add(s.id)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Dataset:
        """Load a prompt-case JSONL file (default: the bundled ``prompts.jsonl`` (:data:`luthien_lab.datasets.DEFAULT_PROMPTS`))."""
        p = Path(path) if path is not None else DEFAULT_PROMPTS
        samples = []
        ids: dict[str, int] = {}
        for lineno, obj in read_jsonl(p):
            sample = Sample.from_dict(obj, source=str(p), lineno=lineno)
            if sample.id in ids:
                raise DatasetError(
                    f"{p}:{lineno}: duplicate id {sample.id!r} (first on line {ids[sample.id]})"
                )
            ids[sample.id] = lineno
            samples.append(sample)
        return cls(samples, path=p)

    def dump(self, path: str | os.PathLike[str]) -> None:
        lines = [json.dumps(s.to_dict(), ensure_ascii=False) for s in self.samples]
        Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")

    def filter(self, tag: str | None = None, *, ids: Iterable[str] | None = None) -> Dataset:
        wanted = set(ids) if ids is not None else None
        return Dataset(
            (
                s
                for s in self.samples
                if (tag is None or tag in s.tags) and (wanted is None or s.id in wanted)
            ),
            path=self.path,
        )

    @property
    def tags(self) -> list[str]:
        return sorted({t for s in self.samples for t in s.tags})

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __getitem__(self, key: int | str) -> Sample:
        if isinstance(key, str):
            for s in self.samples:
                if s.id == key:
                    return s
            raise KeyError(f"no sample with id {key!r}")
        return self.samples[key]

    def __repr__(self) -> str:
        return f"Dataset({len(self)} samples from {self.path or '<memory>'})"
