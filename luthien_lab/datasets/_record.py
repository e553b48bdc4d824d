"""Record live litellm streams into the recording format (``data/README.md``).

The command line is :mod:`luthien_lab.datasets.cli` (``luthien-lab record``).

With no provider key set (see :mod:`luthien_lab.provider`) the requests go to a private
local provider that answers each sample with its scripted response.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from luthien_lab._sync import run_sync
from luthien_lab.datasets._jsonl import DEFAULT_PROMPTS, DEFAULT_RECORDINGS
from luthien_lab.datasets._recordings import Recording, dump_recordings
from luthien_lab.datasets._samples import Dataset, Sample

__all__ = ["FIXTURE_MODELS", "arecord", "make_fixtures", "record"]

FIXTURE_MODELS = ("openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5")
_FIXTURE_CREATED = 1_700_000_000
_FIXTURE_STEP = 0.02  # nominal seconds between chunks in the committed fixtures


def _import_litellm() -> Any:
    from luthien_lab.clients._litellm import import_litellm

    return import_litellm()


def _as_request(
    item: Sample | Mapping[str, Any], model: str | None
) -> tuple[dict, str, Sample | None]:
    if isinstance(item, Sample):
        req = item.request(model=model or "openai/gpt-4o-mini", stream=True)
        return req, item.id, item
    req = dict(item)
    if model is not None:
        req["model"] = model
    if "model" not in req or not isinstance(req.get("messages"), list):
        raise ValueError("each request needs 'messages' (a list) and a model (or model=)")
    return req, str(req.pop("id", "") or ""), None


async def arecord(
    requests: Iterable[Sample | Mapping[str, Any]] | Dataset,
    out_path: str | os.PathLike[str] | None = None,
    *,
    model: str | None = None,
    with_response: bool = False,
    normalize: bool = False,
    timeout: float = 60.0,
) -> list[Recording]:
    """Record each request's litellm stream (and with ``with_response`` the non-streaming
    answer too); write them to ``out_path`` (JSONL) when given and return them.

    ``requests`` are :class:`Sample` objects (or a :class:`Dataset`) or litellm kwarg
    dicts (``messages``, optional ``model``, ``tools``, ``extra_headers``, ``id``...).
    Targets follow :func:`luthien_lab.provider.resolve_target`; the local target is a
    private local provider that also knows each sample's scripted answer.
    ``normalize`` makes the output deterministic (fixed ids/created, nominal offsets).
    """
    from luthien_lab.clients._litellm import litellm_pricing

    # Recordings keep the chunks exactly as litellm yields them by default, its
    # pricing (usage.cost) included, which luthien-lab switches off otherwise.
    with litellm_pricing():
        return await _record(
            requests,
            out_path,
            model=model,
            with_response=with_response,
            normalize=normalize,
            timeout=timeout,
        )


async def _record(
    requests: Iterable[Sample | Mapping[str, Any]] | Dataset,
    out_path: str | os.PathLike[str] | None,
    *,
    model: str | None,
    with_response: bool,
    normalize: bool,
    timeout: float,
) -> list[Recording]:
    from luthien_lab.provider import LocalProvider, protocol_for_model, target_is_local

    litellm = _import_litellm()
    items = [_as_request(item, model) for item in requests]
    local: LocalProvider | None = None
    recordings: list[Recording] = []
    try:
        for n, (req, rid, sample) in enumerate(items):
            target_model = req["model"]
            kwargs = dict(req)
            provider_name = protocol_for_model(target_model)
            if "api_base" not in kwargs and target_is_local(target_model):
                if local is None:
                    local = await asyncio.to_thread(LocalProvider().start)
                    for it in items:
                        if it[2] is not None:
                            local.add_case(it[2].prompt, it[2].response)
                kwargs.update(local.litellm_kwargs(target_model))
                provider_name = "local"
            kwargs.update(
                stream=True,
                stream_options={"include_usage": True},
                num_retries=0,
                timeout=timeout,
            )
            start = time.perf_counter()
            chunks: list[dict[str, Any]] = []
            offsets: list[float] = []
            finish: str | None = None
            response = await litellm.acompletion(**kwargs)
            async for chunk in response:
                offsets.append(round(time.perf_counter() - start, 6))
                data = chunk.model_dump(mode="json")
                chunks.append(data)
                for choice in data.get("choices") or []:
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
            full: dict[str, Any] | None = None
            if with_response:
                kwargs.update(stream=False)
                kwargs.pop("stream_options", None)
                full = (await litellm.acompletion(**kwargs)).model_dump(mode="json")
            rec_id = rid or f"rec-{n + 1}"
            stored_request = {
                k: v
                for k, v in req.items()
                if k not in ("api_key", "api_base", "extra_headers", "stream_options")
            }
            stored_request["stream"] = True
            rec = Recording(
                id=f"{rec_id}@{target_model}" if sample is not None else rec_id,
                provider=provider_name,
                model=target_model,
                protocol=protocol_for_model(target_model),
                request=stored_request,
                chunk_data=chunks,
                offsets=offsets,
                finish_reason=finish,
                response=full,
                case=sample.id if sample is not None else None,
                recorded_at=None if normalize else datetime.now(UTC).isoformat(),
            )
            if normalize:
                _normalize(rec)
            recordings.append(rec)
    finally:
        if local is not None:
            await asyncio.to_thread(local.stop)
    if out_path is not None:
        dump_recordings(recordings, out_path)
    return recordings


def _normalize(rec: Recording) -> None:
    rid = "chatcmpl-" + rec.id.replace("@", "-").replace("/", "-")
    for chunk in rec.chunk_data:
        chunk["id"] = rid
        chunk["created"] = _FIXTURE_CREATED
    if rec.response is not None:
        rec.response["id"] = rid
        rec.response["created"] = _FIXTURE_CREATED
    rec.offsets = [round(i * _FIXTURE_STEP, 3) for i in range(len(rec.chunk_data))]


def record(
    requests: Iterable[Sample | Mapping[str, Any]] | Dataset,
    out_path: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> list[Recording]:
    """Synchronous twin of :func:`arecord` (works inside a running loop too, e.g. Jupyter,
    by running in a helper thread)."""
    return run_sync(lambda: arecord(requests, out_path, **kwargs), thread_name="luthien-record")


def make_fixtures(
    prompts: str | os.PathLike[str] = DEFAULT_PROMPTS,
    out_path: str | os.PathLike[str] = DEFAULT_RECORDINGS,
) -> list[Recording]:
    """Regenerate the committed recordings deterministically: every case of ``prompts``
    through the local provider and litellm, for each of :data:`FIXTURE_MODELS`
    (cases tagged ``openai-only`` are recorded for OpenAI only)."""
    previous = os.environ.get("LUTHIEN_LAB_PROVIDER")
    os.environ["LUTHIEN_LAB_PROVIDER"] = "local"
    try:
        dataset = Dataset.load(prompts)
        out: list[Recording] = []
        for model in FIXTURE_MODELS:
            samples = [
                s
                for s in dataset
                if not (model.startswith("anthropic/") and "openai-only" in s.tags)
            ]
            out += record(samples, None, model=model, with_response=True, normalize=True)
        dump_recordings(out, out_path)
        return out
    finally:
        if previous is None:
            os.environ.pop("LUTHIEN_LAB_PROVIDER", None)
        else:
            os.environ["LUTHIEN_LAB_PROVIDER"] = previous
