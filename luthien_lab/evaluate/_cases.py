"""Evaluation cases: whatever the caller passed as a dataset, normalised to :class:`Case`.

A case is either *recorded* (``chunks`` set: replayed through a scripted client, no
provider involved) or a *prompt* (``chunks`` None: sent through a real client). The
output of a run is reduced to an :class:`Output`: the part of a response a user
sees and a golden file or an invariance check compares.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from luthien_lab.datasets._jsonl import read_jsonl as _read_jsonl
from luthien_lab.errors import DatasetError
from luthien_lab.evaluate._output import Output, output_of, tool_calls_json

# Chunks are materialised with litellm: never let it fetch its price map from the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

__all__ = [
    "DEFAULT_MODEL",
    "Case",
    "Output",
    "Production",
    "iter_cases",
    "output_of",
    "to_cases",
    "tool_calls_json",
]

DEFAULT_MODEL = "openai/gpt-4o-mini"


@dataclass(frozen=True)
class Production:
    """What production did with a recorded transaction: what the client was sent.

    ``text``/``tool_calls`` (``(id, name, arguments)``)/``finish_reason`` of the final
    response; ``status`` (``ok``, ``blocked``, ``error``...); ``egress``: the chunks
    sent (JSON dicts, None for a non-streaming transaction); ``response``: the final
    response as JSON (None when the transaction failed before one existed)."""

    transaction_id: str
    status: str
    text: str
    tool_calls: tuple[tuple[Any, str, str], ...]
    finish_reason: str | None
    model: str | None = None
    started_at: datetime | None = None
    api: str | None = None
    policy: str | None = None
    streaming: bool = True
    error: str | None = None
    egress: list[dict[str, Any]] | None = None
    response: dict[str, Any] | None = None

    @property
    def blocked(self) -> bool:
        return self.status == "blocked"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["tool_calls"] = [list(c) for c in self.tool_calls]
        out["started_at"] = self.started_at.isoformat() if self.started_at else None
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Production:
        values = dict(data)
        values["tool_calls"] = tuple(tuple(c) for c in values.get("tool_calls") or ())
        started = values.get("started_at")
        values["started_at"] = datetime.fromisoformat(started) if started else None
        return cls(**values)


@dataclass
class Case:
    """One evaluation case.

    - ``request``: OpenAI chat kwargs (``model``, ``messages``, ``tools``...).
    - ``chunks``: recorded stream chunks as JSON dicts, or None for a prompt case.
    - ``offsets``: seconds since the request for each chunk (original pacing).
    - ``response``: a recorded non-streaming response (JSON dict): replayed through
      the policy's full-response path.
    - ``production``: for a case read from a store (``Store.cases``), what production
      sent the client (:class:`Production`): the reference the candidate is compared
      with.
    - ``sample``: the :class:`~luthien_lab.datasets.Sample` a prompt case came from
      (its scripted answer is registered with the local provider).
    """

    id: str
    request: dict[str, Any]
    chunks: list[dict[str, Any]] | None = None
    offsets: list[float] | None = None
    sample: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    response: dict[str, Any] | None = None
    production: Production | None = None

    @property
    def recorded(self) -> bool:
        return self.chunks is not None or self.response is not None or self.production is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (used to ship cases to Ray workers and to Parquet)."""
        return {
            "id": self.id,
            "request": self.request,
            "chunks": self.chunks,
            "offsets": self.offsets,
            "response": self.response,
            "production": self.production.to_dict() if self.production else None,
        }


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


def _load_path(path: Path) -> Iterable[Any]:
    """A JSONL file of recordings or of prompt cases (told apart by their keys)."""
    from luthien_lab.datasets import Dataset, load_recordings

    if path.suffix == ".parquet":
        return iter_parquet_cases(path)
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


def iter_cases(dataset: Any, *, model: str = DEFAULT_MODEL) -> Iterator[Case]:
    """Normalise ``dataset`` to cases one at a time (a store's cases stream in
    batches, never as one list); a repeated case id raises :class:`DatasetError`.

    Accepts a path (recordings or prompt JSONL, or Parquet), a ``Dataset``, or an
    iterable of ``Recording``/``Sample``/dicts/prompt strings/lists of chunks/cases.
    """
    if isinstance(dataset, str | os.PathLike):
        dataset = _load_path(Path(dataset))
    if isinstance(dataset, Case):
        dataset = [dataset]
    if not isinstance(dataset, Iterable):
        raise DatasetError(f"dataset must be a path or an iterable of cases, got {dataset!r}")
    seen: set[str] = set()
    for index, item in enumerate(dataset):
        case = _from_item(item, index, model)
        if case.id in seen:
            raise DatasetError(
                f"duplicate case id {case.id!r} (item {index}); give every case a unique 'id'"
            )
        seen.add(case.id)
        yield case


def to_cases(dataset: Any, *, model: str = DEFAULT_MODEL) -> list[Case]:
    """:func:`iter_cases` as a list."""
    return list(iter_cases(dataset, model=model))


# ------------------------------------------------------------------------------------
# Parquet (for sharding across machines)
# ------------------------------------------------------------------------------------
_PARQUET_COLUMNS = ("request", "chunks", "offsets", "response", "production")


def cases_to_parquet(dataset: Any, path: str | os.PathLike[str], batch: int = 1000) -> Path:
    """Write recorded cases as Parquet: one row per case, column ``id`` and JSON text
    columns ``request``, ``chunks``, ``offsets``, ``response``, ``production`` (so any
    engine can shard by row group). Written ``batch`` cases at a time: a store's
    cases never sit in memory all at once."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("id", pa.string())] + [(c, pa.string()) for c in _PARQUET_COLUMNS])
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")

    def dumps(value: Any) -> str | None:
        return None if value is None else json.dumps(value, ensure_ascii=False, default=str)

    rows: list[dict[str, Any]] = []
    with pq.ParquetWriter(tmp, schema) as writer:

        def flush() -> None:
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
            rows.clear()

        for case in iter_cases(dataset):
            data = case.to_dict()
            rows.append({"id": case.id, **{c: dumps(data[c]) for c in _PARQUET_COLUMNS}})
            if len(rows) >= batch:
                flush()
        flush()
    os.replace(tmp, out)
    return out


def case_from_row(row: Mapping[str, Any]) -> Case:
    def load(name: str) -> Any:
        value = row.get(name)
        return json.loads(value) if value else None

    production = load("production")
    return Case(
        id=str(row["id"]),
        request=json.loads(row["request"]),
        chunks=load("chunks"),
        offsets=load("offsets"),
        response=load("response"),
        production=Production.from_dict(production) if production else None,
    )


def iter_parquet_cases(
    path: str | os.PathLike[str], start: int = 0, stop: int | None = None
) -> Iterator[Case]:
    """The cases of rows ``start:stop`` of a Parquet export, read one row group at a
    time (row groups outside the range are skipped unread)."""
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such Parquet file") from None
    missing = {"id", "request", "chunks"} - set(file.schema_arrow.names)
    if missing:
        raise DatasetError(
            f"{path}: Parquet dataset lacks column(s) {sorted(missing)}; "
            "write it with luthien_lab.evaluate.export_parquet"
        )
    stop = file.metadata.num_rows if stop is None else stop
    first = 0
    for group in range(file.num_row_groups):
        size = file.metadata.row_group(group).num_rows
        lo, hi = max(start, first), min(stop, first + size)
        if lo < hi:
            table = file.read_row_group(group).slice(lo - first, hi - lo)
            for row in table.to_pylist():
                yield case_from_row(row)
        first += size
        if first >= stop:
            return


def load_parquet_cases(path: str | os.PathLike[str]) -> list[Case]:
    return list(iter_parquet_cases(path))
