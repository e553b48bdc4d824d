"""Recorded transactions as evaluation cases (``Store.cases``).

A case holds what production's policy sent upstream (the final request), the exact
ingress chunks with their time offsets (so a paced replay keeps the recorded pace),
or the upstream's response for a non-streaming transaction, and what the client was
sent (:class:`~luthien_lab.evaluate.Production`): the reference a candidate policy is
compared with. The gateway records every wire API (Chat Completions, Anthropic
Messages, OpenAI Responses) in one chat-completion shape, so every transaction reads
the same way.

Cases are read in batches of ``batch_size`` transactions (keyset paging on
``started_at, transaction_id``; three bulk queries per batch: the page of
transactions, then the payloads and the chunks of the whole page), each batch under its own short hold of
the file: a store of any size streams in bounded memory, and the gateway can keep
recording between batches.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import json
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from luthien_lab.evaluate import Case
    from luthien_lab.store._store import Store

__all__ = ["API_SQL", "StoreCases", "parse_time", "transaction_filter"]

# The wire API a transaction came in on: the ``api`` column (set from the ``api`` tag);
# for transactions recorded before it was set, told by the upstream client the gateway
# picked (native Anthropic and Responses clients); anything else is chat-shaped.
API_SQL = (
    "COALESCE(t.api, CASE t.provider WHEN 'anthropic-native' THEN 'messages' "
    "WHEN 'openai-responses' THEN 'responses' ELSE 'chat' END)"
)
_APIS = ("chat", "messages", "responses")
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(name: str, value: Any, now: _dt.datetime | None = None) -> _dt.datetime | None:
    """A point in time from a datetime, a timedelta or ``"7d"``-style text (both
    meaning "that long ago"), or ISO text; naive datetimes are UTC."""
    if value is None:
        return None
    now = now or _dt.datetime.now(_dt.UTC)
    if isinstance(value, _dt.timedelta):
        return now - value
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=_dt.UTC)
    if isinstance(value, _dt.date):
        return _dt.datetime(value.year, value.month, value.day, tzinfo=_dt.UTC)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            amount, unit = float(match.group(1)), match.group(2)
            return now - _dt.timedelta(**{_UNITS[unit]: amount})
        try:
            return parse_time(name, _dt.datetime.fromisoformat(value.strip()), now)
        except ValueError:
            pass
    raise ValueError(
        f"{name}={value!r} is not a time: pass a datetime, a timedelta, a duration such "
        "as '7d', '12h', '30m', '45s', '2w' (that long ago) or an ISO date/time"
    )


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def transaction_filter(
    *,
    since: Any = None,
    until: Any = None,
    status: str | Sequence[str] | None = None,
    model: str | Sequence[str] | None = None,
    policy: str | None = None,
    tag: str | None = None,
    api: str | Sequence[str] | None = None,
    where: str | None = None,
    shadows: bool = False,
    now: _dt.datetime | None = None,
) -> tuple[str, list[Any]]:
    """``(SQL condition over transactions aliased t, parameters)`` for the filters
    :meth:`Store.cases` takes (the transaction browser takes the same ones)."""
    clauses: list[str] = []
    params: list[Any] = []
    start, end = parse_time("since", since, now), parse_time("until", until, now)
    if start is not None:
        clauses.append("t.started_at >= ?")
        params.append(start)
    if end is not None:
        clauses.append("t.started_at < ?")
        params.append(end)
    if status is not None:
        values = _as_list(status)
        clauses.append(f"t.status IN ({', '.join('?' for _ in values)})")
        params.extend(values)
    if model is not None:
        values = _as_list(model)
        clauses.append(f"t.model IN ({', '.join('?' for _ in values)})")
        params.extend(values)
    if policy is not None:
        clauses.append("(t.policy_class = ? OR t.policy_class LIKE ?)")
        params.extend([policy, f"%.{policy}"])
    if tag is not None:
        key, sep, value = tag.partition("=")
        if not key.strip():
            raise ValueError(f"tag={tag!r}: pass a tag key or 'key=value'")
        path = '$."' + key.strip().replace('"', '\\"') + '"'
        if sep:
            clauses.append("json_extract_string(t.tags, ?) = ?")
            params.extend([path, value])
        else:
            clauses.append("json_extract(t.tags, ?) IS NOT NULL")
            params.append(path)
    if api is not None:
        values = _as_list(api)
        bad = [v for v in values if v not in _APIS]
        if bad:
            raise ValueError(f"api={bad[0]!r}: pass one of {', '.join(_APIS)}")
        clauses.append(f"{API_SQL} IN ({', '.join('?' for _ in values)})")
        params.extend(values)
    if where:
        clauses.append(f"({where})")
    if not shadows:
        clauses.append("t.shadow_of IS NULL")
    return " AND ".join(clauses) or "TRUE", params


class StoreCases:
    """The recorded transactions matching some filters, as evaluation cases.

    Iterating reads the store in batches of ``batch_size`` (re-iterable: each pass
    reads again); ``len()`` is one COUNT query. Filters:

    - ``since``/``until``: a datetime, a timedelta or ``"7d"``/``"12h"``/``"30m"``
      (that long ago), or ISO text; a bad value raises ValueError naming it;
    - ``status``, ``model``, ``api`` (``chat``, ``messages``, ``responses``): one
      value or several; ``policy``: the policy class, qualified or not;
    - ``tag``: a key of the ``tags`` JSON, or ``"key=value"``;
    - ``where``: a SQL condition on ``transactions`` (alias ``t``); ``limit``;
    - ``shadows``: include shadow policies' transactions (``shadow_of`` set), left
      out by default.
    """

    def __init__(
        self,
        store: Store,
        *,
        since: Any = None,
        until: Any = None,
        status: str | Sequence[str] | None = None,
        model: str | Sequence[str] | None = None,
        policy: str | None = None,
        tag: str | None = None,
        api: str | Sequence[str] | None = None,
        where: str | None = None,
        limit: int | None = None,
        shadows: bool = False,
        batch_size: int = 500,
    ) -> None:
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit={limit!r}: pass a whole number >= 0")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}: pass a whole number >= 1")
        self.store = store
        self.limit = limit
        self.batch_size = batch_size
        self._len: int | None = None
        self._where, self._params = transaction_filter(
            since=since,
            until=until,
            status=status,
            model=model,
            policy=policy,
            tag=tag,
            api=api,
            where=where,
            shadows=shadows,
        )

    def __repr__(self) -> str:
        return f"<StoreCases {self._where!r} limit={self.limit} in {self.store.path}>"

    def __len__(self) -> int:
        if self._len is None:
            frame = self.store.sql(
                f"SELECT count(*) AS n FROM transactions t WHERE {self._where}", self._params
            )
            n = int(frame["n"].iloc[0])
            self._len = n if self.limit is None else min(n, self.limit)
        return self._len

    def __iter__(self) -> Iterator[Case]:
        after: tuple[Any, str] | None = None
        left = self.limit
        while left is None or left > 0:
            size = self.batch_size if left is None else min(self.batch_size, left)
            batch = self._batch(after, size)
            yield from batch
            if len(batch) < size:
                return
            last = batch[-1]
            after = (last.metadata["started_us"], last.id)
            if left is not None:
                left -= len(batch)

    def _batch(self, after: tuple[Any, str] | None, size: int) -> list[Case]:
        where, params = self._where, list(self._params)
        if after is not None:
            where += (
                " AND (epoch_us(t.started_at) > ? OR "
                "(epoch_us(t.started_at) = ? AND t.transaction_id > ?))"
            )
            params.extend([after[0], after[0], after[1]])
        query = (
            # Microseconds, not TIMESTAMPTZ: DuckDB converts those to Python through
            # the local time zone at milliseconds per value.
            "SELECT t.transaction_id, epoch_us(t.started_at), t.model, t.policy_class, "
            f"t.streaming, t.status, t.error, {API_SQL} AS api FROM transactions t "
            f"WHERE {where} ORDER BY t.started_at, t.transaction_id LIMIT {int(size)}"
        )
        # Three bulk queries: the page of transactions first, then only its payloads
        # and chunks (joining payloads in the first query would read every payload
        # of the store for each page).
        with self.store._connection() as con:
            rows = con.execute(query, params).fetchall()
            if not rows:
                return []
            ids = [row[0] for row in rows]
            payloads = {
                row[0]: row[1:]
                for row in con.execute(
                    "SELECT transaction_id, "
                    "CAST(COALESCE(final_request, original_request) AS VARCHAR), "
                    "CAST(original_response AS VARCHAR), CAST(final_response AS VARCHAR) "
                    "FROM payloads WHERE transaction_id IN (SELECT unnest(?::VARCHAR[]))",
                    [ids],
                ).fetchall()
            }
            chunk_rows = con.execute(
                "SELECT transaction_id, direction, chunk_index, offset_ns, egress_index, "
                f"{_CHUNK_FIELDS}, CAST(raw_json AS VARCHAR) FROM chunk_rows "
                "WHERE transaction_id IN (SELECT unnest(?::VARCHAR[])) "
                "ORDER BY transaction_id, direction, chunk_index",
                [ids],
            ).fetchall()
        with _no_gc():
            by_tx: dict[str, list[tuple[Any, ...]]] = {}
            for row in chunk_rows:
                by_tx.setdefault(row[0], []).append(row)
            none = (None, None, None)
            return [_case(row + payloads.get(row[0], none), by_tx.get(row[0], ())) for row in rows]


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Without the cycle collector: a batch allocates many small containers (no
    cycles among them), each allocation burst otherwise triggering a collection
    that walks every object alive (several times the cost of the building)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# The chunk columns, read as Python values and made into the dict ``RAW_CHUNK_SQL``
# makes (see ``_schema``): cheaper than serialising in SQL and parsing again.
_CHUNK_FIELDS = (
    "response_id, created, model, system_fingerprint, finish_reason, role, content, "
    "reasoning, tool_calls, prompt_tokens, completion_tokens, total_tokens"
)


def _chunk_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    """A chunk as JSON: its stored original (``raw_json``) or rebuilt from columns."""
    if row[-1] is not None:
        return json.loads(row[-1])
    rid, created, model, fingerprint, finish, role, content, reasoning, calls = row[5:14]
    prompt, completion, total = row[14:17]
    return {
        "id": rid,
        "created": created,
        "model": model,
        "object": "chat.completion.chunk",
        "system_fingerprint": fingerprint,
        "choices": [
            {
                "index": 0,
                "finish_reason": finish,
                "delta": {
                    "role": role,
                    "content": content,
                    "reasoning_content": reasoning,
                    "tool_calls": None
                    if calls is None
                    else [
                        {
                            "index": call["index"],
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": call["name"], "arguments": call["arguments"]},
                        }
                        for call in calls
                    ],
                },
            }
        ],
        "usage": None
        if total is None and prompt is None
        else {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total},
    }


def _case(row: tuple[Any, ...], chunk_rows: Sequence[tuple[Any, ...]]) -> Case:
    """One case from its transaction row and chunk rows (ingress then egress, each in
    order)."""
    from luthien_lab.evaluate._cases import Case, Production
    from luthien_lab.evaluate._output import summarize_chunk_dicts, summarize_response_dict

    tid, started_us, model, policy, streaming, status, error, api = row[:8]
    started = None if started_us is None else _EPOCH + _dt.timedelta(microseconds=started_us)
    request_json, original_json, final_json = row[8:]
    request = json.loads(request_json) if request_json else {"model": model, "messages": []}
    request.pop("stream", None)
    chunks: list[dict[str, Any]] = []
    offsets: list[float] = []
    egress: list[tuple[int, dict[str, Any]]] = []
    for row in chunk_rows:
        direction, index, offset_ns, egress_index = row[1:5]
        chunk = _chunk_dict(row)
        if direction == "ingress":
            chunks.append(chunk)
            offsets.append((offset_ns or 0) / 1e9)
            if egress_index is not None:  # passed through: also sent as it was
                egress.append((egress_index, chunk))
        else:
            egress.append((index, chunk))
    egress.sort(key=lambda pair: pair[0])
    sent = [chunk for _index, chunk in egress]
    final = json.loads(final_json) if final_json else None
    summary = summarize_response_dict(final) if final else summarize_chunk_dicts(sent)
    production = Production(
        transaction_id=tid,
        status=status or "ok",
        text=summary.text,
        tool_calls=summary.calls,
        finish_reason=summary.finish_reason,
        model=model,
        started_at=started,
        api=api,
        policy=policy,
        streaming=bool(streaming),
        error=error,
        egress=sent if streaming else None,
        response=final,
    )
    upstream = json.loads(original_json) if original_json and not streaming else None
    return Case(
        id=tid,
        request=request,
        # A non-streaming transaction with no upstream response replays as an empty
        # stream (nothing to feed the policy, still a recorded case).
        chunks=chunks if streaming or upstream is None else None,
        offsets=offsets if streaming else None,
        response=upstream,
        production=production,
        metadata={"model": model, "api": api, "started_at": started, "started_us": started_us},
    )
