"""Chunk fields as columns: what the recorder's writer thread stores per chunk.

:func:`chunk_row` is the reference: one chunk, any shape (a litellm pydantic chunk, a
dict, anything with a ``__dict__``), read by attribute access. :func:`chunk_columns`
gives the same values for a whole stream, column by column, with the common litellm
shape read inline (a call per chunk and a tuple per row cost more than the reads
themselves); any chunk off that shape goes through :func:`chunk_row`, so the two
agree on every chunk (tested on synthetic and recorded streams).

``raw_json`` holds the chunk serialised whole, only when it has a non-None field that
no column holds (counted: non-None values beyond the known ones), so that nothing a
provider sent is lost.
"""

from __future__ import annotations

import itertools
import json
from operator import is_not
from typing import Any

from luthien_lab.store._redact import to_plain
from luthien_lab.streaming.lazy import LazyChunk, raw_fields

__all__ = ["CHUNK_COLUMNS", "chunk_columns", "chunk_row"]

CHUNK_COLUMNS = (
    "response_id",
    "model",
    "created",
    "system_fingerprint",
    "role",
    "content",
    "reasoning",
    "tool_calls",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "raw_json",
)

_EMPTY: dict[str, Any] = {}
# What the columns hold of a chunk and of a delta (usage is never set on the fast path).
_CHUNK_KEYS = frozenset({"id", "created", "model", "system_fingerprint", "object", "choices"})
_DELTA_KEYS = frozenset({"role", "content", "reasoning_content", "tool_calls"})
# ``sum(map(is_not, values, _NONE))`` counts the non-None values in C, without calling
# the values' ``__eq__`` (slow on pydantic models).
_NONE = itertools.repeat(None)


def _fields(obj: Any) -> dict[str, Any]:
    """Every field of a pydantic model (declared and extra) by attribute access, or
    the dict itself; a lazy chunk's event as parsed (``streaming.lazy``: the same
    fields, read without waking it)."""
    kind = type(obj)
    if kind is dict:
        return obj
    if kind is LazyChunk:
        return raw_fields(obj)  # type: ignore[no-any-return]
    fields = obj.__dict__
    extra = getattr(obj, "__pydantic_extra__", None)
    return {**fields, **extra} if extra else fields


def raw_json(chunk: Any) -> str:
    """The chunk serialised whole."""
    dump = getattr(chunk, "model_dump_json", None)
    if dump is not None:
        try:
            return dump(warnings=False)
        except Exception:
            pass
    return json.dumps(to_plain(chunk), default=str)


def _tool_calls(calls: Any) -> list[dict[str, Any]]:
    tools = []
    for call in calls:
        tf = _fields(call)
        fn = tf.get("function")
        ff = _fields(fn) if fn is not None else _EMPTY
        tools.append(
            {
                "index": tf.get("index"),
                "id": tf.get("id"),
                "name": ff.get("name"),
                "arguments": ff.get("arguments"),
            }
        )
    return tools


def chunk_row(chunk: Any) -> tuple[Any, ...]:
    """One chunk's values, in :data:`CHUNK_COLUMNS` order."""
    try:
        f = _fields(chunk)
        created = f.get("created")
        usage = f.get("usage")
        choices = f.get("choices")
        rid, model, fp, obj = (
            f.get("id"),
            f.get("model"),
            f.get("system_fingerprint"),
            f.get("object"),
        )
        known = (
            (rid is not None)
            + (created is not None)
            + (model is not None)
            + (fp is not None)
            + (obj is not None)
            + (usage is not None)
            + (choices is not None)
        )
        rare = sum(map(is_not, f.values(), _NONE)) > known
        role = content = reasoning = tools = finish = None
        if choices:
            if len(choices) != 1:
                rare = True
            cf = _fields(choices[0])
            finish = cf.get("finish_reason")
            delta = cf.get("delta")
            if cf.get("logprobs") is not None or len(cf) > 4:
                rare = True
            if delta is not None:
                df = _fields(delta)
                role = df.get("role")
                content = df.get("content")
                reasoning = df.get("reasoning_content")
                calls = df.get("tool_calls")
                known = (
                    (role is not None)
                    + (content is not None)
                    + (reasoning is not None)
                    + (calls is not None)
                )
                if sum(map(is_not, df.values(), _NONE)) > known:
                    rare = True
                if calls:
                    tools = _tool_calls(calls)
        pt = ct = tt = None
        if usage is not None:
            uf = _fields(usage)
            pt = uf.get("prompt_tokens")
            ct = uf.get("completion_tokens")
            tt = uf.get("total_tokens")
            if sum(map(is_not, uf.values(), _NONE)) > (pt is not None) + (ct is not None) + (
                tt is not None
            ):
                rare = True
        return (
            rid,
            model,
            int(created) if created is not None else None,
            fp,
            role,
            content,
            reasoning,
            tools,
            finish,
            pt,
            ct,
            tt,
            raw_json(chunk) if rare else None,
        )
    except Exception:
        # Not a chunk we understand: keep it whole, leave the columns empty.
        return (None,) * 12 + (raw_json(chunk),)


_Walk = tuple[
    list[dict[str, Any]],
    list[dict[str, Any]],
    list[dict[str, Any]],
    list[dict[str, Any]],
    list[int],
]


def chunk_columns(chunks: list[Any]) -> list[list[Any]]:
    """The values of ``chunks`` as columns, in :data:`CHUNK_COLUMNS` order; the same
    values :func:`chunk_row` gives chunk by chunk.

    The columnar path takes litellm's ``ModelResponseStream`` shape: a pydantic chunk
    without extras or usage, whose ``choices`` holds one pydantic choice whose delta
    is a pydantic delta with no declared field set (litellm keeps a delta's fields
    among its extras). Every other chunk goes through :func:`chunk_row`. Whether a chunk holds something no column holds is
    decided key by key over the whole stream, for the keys outside the columns only.

    Its cost (~1.5 us a chunk) is mostly memory: four objects a chunk, each touched
    once. Reaching them a level at a time with comprehensions, or plucking fields
    with ``itemgetter``, measured no faster.
    """
    if not chunks:
        return [[] for _ in CHUNK_COLUMNS]
    return _columns(chunks, *_walk_chunks(chunks))


def _walk_chunks(chunks: list[Any]) -> _Walk:
    """Each chunk's field dicts: the chunk's, its choice's (declared and extra
    merged), its delta's extras and its delta's declared fields. A chunk off the shape
    is listed as slow and stands in as empty dicts."""
    fs: list[dict[str, Any]] = []
    cfs: list[dict[str, Any]] = []
    dxs: list[dict[str, Any]] = []
    dfs: list[dict[str, Any]] = []
    slow: list[int] = []
    f_add, cf_add, dx_add, df_add = fs.append, cfs.append, dxs.append, dfs.append
    list_type, empty = list, _EMPTY
    for i, chunk in enumerate(chunks):
        try:
            if type(chunk) is LazyChunk:
                raise LookupError  # chunk_row reads its event, without waking it
            f = chunk.__dict__
            choices = f["choices"]
            if (
                chunk.__pydantic_extra__
                or type(choices) is not list_type
                or len(choices) != 1
                or f.get("usage") is not None
            ):
                raise LookupError
            choice = choices[0]
            cf = choice.__dict__
            cx = choice.__pydantic_extra__
            if cx:
                if cf:
                    raise LookupError
                cf = cx
            delta = cf["delta"]
            dx = delta.__pydantic_extra__ or empty
            df = delta.__dict__
        except Exception:
            slow.append(i)
            f = cf = dx = df = empty
        f_add(f)
        cf_add(cf)
        dx_add(dx)
        df_add(df)
    return fs, cfs, dxs, dfs, slow


def _columns(
    chunks: list[Any],
    fs: list[dict[str, Any]],
    cfs: list[dict[str, Any]],
    dxs: list[dict[str, Any]],
    dfs: list[dict[str, Any]],
    slow: list[int],
) -> list[list[Any]]:
    n = len(chunks)
    rid = [f.get("id") for f in fs]
    model = [f.get("model") for f in fs]
    created = [f.get("created") for f in fs]
    if not {type(c) for c in created} <= {int, type(None)}:
        created = [c if c is None or type(c) is int else int(c) for c in created]
    fp = [f.get("system_fingerprint") for f in fs]
    dx_keys = set().union(*dxs)
    role = [d.get("role") for d in dxs]
    content = [d.get("content") for d in dxs]
    calls = [d.get("tool_calls") for d in dxs]
    reasoning = (
        [d.get("reasoning_content") for d in dxs] if "reasoning_content" in dx_keys else [None] * n
    )
    finish = [c.get("finish_reason") for c in cfs]
    logprobs = [c.get("logprobs") for c in cfs]
    raw: list[Any] = [None] * n
    rare: set[int] = set()
    # A chunk holds nothing the columns do not when every key outside the known ones
    # is None in it: look only at the keys outside, found once for the stream.
    for key in set().union(*fs).difference(_CHUNK_KEYS):
        values = [f.get(key) for f in fs]
        if values.count(None) != n:
            rare.update(i for i, value in enumerate(values) if value is not None)
    for key in dx_keys.difference(_DELTA_KEYS):
        values = [d.get(key) for d in dxs]
        if values.count(None) != n:
            rare.update(i for i, value in enumerate(values) if value is not None)
    for key in set().union(*dfs):
        values = [d.get(key) for d in dfs]
        if values.count(None) != n:
            # A declared delta field is set: read that chunk the general way.
            slow.extend(i for i, value in enumerate(values) if value is not None)
    if logprobs.count(None) != n or max(map(len, cfs)) > 4:
        rare.update(i for i, c in enumerate(cfs) if c.get("logprobs") is not None or len(c) > 4)
    tools = [_tool_calls(c) if c else None for c in calls]
    for i in rare.difference(slow):
        raw[i] = raw_json(chunks[i])
    no_usage = [None] * n
    columns: list[list[Any]] = [
        rid,
        model,
        created,
        fp,
        role,
        content,
        reasoning,
        tools,
        finish,
        no_usage,
        list(no_usage),
        list(no_usage),
        raw,
    ]
    for i in set(slow):
        for column, value in zip(columns, chunk_row(chunks[i]), strict=True):
            column[i] = value
    return columns
