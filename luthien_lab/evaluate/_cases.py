"""Evaluation cases: whatever the caller passed as a dataset, normalised to :class:`Case`.

A case is either *recorded* (``chunks`` set: replayed through a scripted client, no
provider involved) or a *prompt* (``chunks`` None: sent through a real client). The
output of a run is reduced to an :class:`Output`: the part of a response a user
sees and a golden file or an invariance check compares.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from luthien_lab.datasets._jsonl import read_jsonl as _read_jsonl
from luthien_lab.errors import DatasetError

# Chunks are materialised with litellm: never let it fetch its price map from the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

__all__ = ["DEFAULT_MODEL", "Case", "Output", "output_of", "to_cases"]

DEFAULT_MODEL = "openai/gpt-4o-mini"


@dataclass
class Case:
    """One evaluation case.

    - ``request``: OpenAI chat kwargs (``model``, ``messages``, ``tools``...).
    - ``chunks``: recorded stream chunks as JSON dicts, or None for a prompt case.
    - ``offsets``: seconds since the request for each chunk (original pacing).
    - ``sample``: the :class:`~luthien_lab.datasets.Sample` a prompt case came from
      (its scripted answer is registered with the local provider).
    """

    id: str
    request: dict[str, Any]
    chunks: list[dict[str, Any]] | None = None
    offsets: list[float] | None = None
    sample: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def recorded(self) -> bool:
        return self.chunks is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (used to ship cases to Ray workers and to Parquet)."""
        return {
            "id": self.id,
            "request": self.request,
            "chunks": self.chunks,
            "offsets": self.offsets,
        }


@dataclass(frozen=True)
class Output:
    """What a response amounts to: text, tool calls (name, arguments), finish reason,
    and the error type when the run failed. Equal outputs mean "the user saw the same"."""

    text: str
    tool_calls: tuple[tuple[str, str], ...]
    finish_reason: str | None
    error: str | None = None

    def describe(self) -> str:
        if self.error:
            return f"error {self.error}"
        calls = ", ".join(f"{name}({args})" for name, args in self.tool_calls)
        return f"text={self.text!r} tool_calls=[{calls}] finish={self.finish_reason}"


def output_of(response: Any, error: BaseException | None = None) -> Output:
    """The :class:`Output` of a litellm ``ModelResponse`` (None: empty)."""
    err = type(error).__name__ if error is not None else None
    if response is None or not getattr(response, "choices", None):
        return Output("", (), None, err)
    choice = response.choices[0]
    message = choice.message
    calls = tuple(
        (call.function.name or "", call.function.arguments or "")
        for call in (message.tool_calls or [])
    )
    return Output(message.content or "", calls, choice.finish_reason, err)


def tool_calls_json(response: Any) -> str:
    """Tool calls of a response as JSON: ``[{"id", "name", "arguments"}]``."""
    if response is None or not getattr(response, "choices", None):
        return "[]"
    calls = response.choices[0].message.tool_calls or []
    return json.dumps(
        [
            {
                "id": call.id,
                "name": call.function.name or "",
                "arguments": call.function.arguments or "",
            }
            for call in calls
        ],
        ensure_ascii=False,
    )


# ------------------------------------------------------------------------------------
# normalisation
# ------------------------------------------------------------------------------------
def _chunk_dict(chunk: Any) -> dict[str, Any]:
    if isinstance(chunk, Mapping):
        return dict(chunk)
    if isinstance(chunk, str):
        return json.loads(chunk)
    if hasattr(chunk, "model_dump"):
        return chunk.model_dump(mode="json")
    raise DatasetError(
        f"a recorded chunk must be a dict, JSON text or litellm chunk, got {type(chunk).__name__}"
    )


def _default_request(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "(recorded stream)"}]}


def _from_item(item: Any, index: int, model: str) -> Case:
    from luthien_lab.datasets import Recording, Sample

    if isinstance(item, Case):
        return item
    if isinstance(item, Recording):
        return Case(
            id=item.id,
            request=dict(item.request),
            chunks=[dict(c) for c in item.chunk_data],
            offsets=list(item.offsets),
            metadata={"case": item.case, "protocol": item.protocol},
        )
    if isinstance(item, Sample):
        return Case(id=item.id, request=item.request(model=model), sample=item)
    if isinstance(item, Mapping):
        if "chunks" in item:
            if "protocol" in item and "model" in item:
                return _from_item(Recording.from_dict(item), index, model)
            chunks = [_chunk_dict(c) for c in item["chunks"]]
            offsets = item.get("offsets")
            return Case(
                id=str(item.get("id") or f"case-{index}"),
                request=dict(item.get("request") or _default_request(model)),
                chunks=chunks,
                offsets=[float(o) for o in offsets] if offsets is not None else None,
            )
        if "prompt" in item:
            return _from_item(Sample.from_dict(item), index, model)
        if "messages" in item:
            request = dict(item)
            case_id = str(request.pop("id", None) or f"case-{index}")
            request.setdefault("model", model)
            return Case(id=case_id, request=request)
        raise DatasetError(
            f"dataset item {index} has keys {sorted(item)}; expected a recording "
            "('chunks'), a prompt case ('prompt') or a request ('messages')"
        )
    if isinstance(item, str):
        return Case(
            id=f"case-{index}",
            request={"model": model, "messages": [{"role": "user", "content": item}]},
        )
    if isinstance(item, list | tuple):
        return Case(
            id=f"case-{index}",
            request=_default_request(model),
            chunks=[_chunk_dict(c) for c in item],
        )
    raise DatasetError(
        f"dataset item {index} is a {type(item).__name__}; pass Recording, Sample, a dict, "
        "a prompt string or a list of chunks"
    )


def _load_path(path: Path) -> list[Any]:
    """A JSONL file of recordings or of prompt cases (told apart by their keys)."""
    from luthien_lab.datasets import Dataset, load_recordings

    if path.suffix == ".parquet":
        return load_parquet_cases(path)
    probe = path
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise DatasetError(f"{path}: no *.jsonl files in this folder")
        probe = files[0]
    try:
        with probe.open(encoding="utf-8") as handle:
            first = next((line for line in handle if line.strip()), "")
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such dataset file") from None
    if '"chunks"' in first:
        if '"protocol"' in first:
            return list(load_recordings(path))
        return _loose_chunk_lines(probe if not path.is_dir() else path)
    return list(Dataset.load(path))


def _loose_chunk_lines(path: Path) -> list[Any]:
    """JSONL of ``{"id", "chunks", "request"?, "offsets"?}`` objects (no recording header)."""
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    return [item for file in files for _lineno, item in _read_jsonl(file)]


def to_cases(dataset: Any, *, model: str = DEFAULT_MODEL) -> list[Case]:
    """Normalise ``dataset`` to a list of cases with unique ids.

    Accepts a path (recordings or prompt JSONL, or Parquet), a ``Dataset``, or an
    iterable of ``Recording``/``Sample``/dicts/prompt strings/lists of chunks.
    """
    if isinstance(dataset, str | os.PathLike):
        dataset = _load_path(Path(dataset))
    if isinstance(dataset, Case):
        dataset = [dataset]
    if not isinstance(dataset, Iterable):
        raise DatasetError(f"dataset must be a path or an iterable of cases, got {dataset!r}")
    cases = [_from_item(item, index, model) for index, item in enumerate(dataset)]
    seen: dict[str, int] = {}
    for case in cases:
        if case.id in seen:
            raise DatasetError(
                f"duplicate case id {case.id!r} (items {seen[case.id]} and later); "
                "give every case a unique 'id'"
            )
        seen[case.id] = 1
    return cases


# ------------------------------------------------------------------------------------
# Parquet (for sharding across machines)
# ------------------------------------------------------------------------------------
def cases_to_parquet(dataset: Any, path: str | os.PathLike[str]) -> Path:
    """Write recorded cases as Parquet: one row per case, JSON text columns
    ``request``, ``chunks``, ``offsets`` (so any engine can shard by row group)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cases = to_cases(dataset)
    table = pa.table(
        {
            "id": [c.id for c in cases],
            "request": [json.dumps(c.request, ensure_ascii=False) for c in cases],
            "chunks": [
                json.dumps(c.chunks, ensure_ascii=False) if c.chunks is not None else None
                for c in cases
            ],
            "offsets": [json.dumps(c.offsets) if c.offsets is not None else None for c in cases],
        }
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    return out


def case_from_row(row: Mapping[str, Any]) -> Case:
    chunks = row.get("chunks")
    offsets = row.get("offsets")
    return Case(
        id=str(row["id"]),
        request=json.loads(row["request"]),
        chunks=json.loads(chunks) if chunks else None,
        offsets=json.loads(offsets) if offsets else None,
    )


def load_parquet_cases(path: str | os.PathLike[str]) -> list[Case]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such Parquet file") from None
    missing = {"id", "request", "chunks"} - set(table.column_names)
    if missing:
        raise DatasetError(
            f"{path}: Parquet dataset lacks column(s) {sorted(missing)}; "
            "write it with luthien_lab.evaluate.export_parquet"
        )
    return [case_from_row(row) for row in table.to_pylist()]
