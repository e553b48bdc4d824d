"""The transaction browser on a large store: what a page, a filter and a search cost.

Run: ``python benchmarks/bench_browse.py`` (``--transactions N``, default 100,000;
``--rounds R``).

Builds a store file of N transactions (payloads of about 4 KB: a request and a
response, each twice, as the recorder stores them), opens it read-only as
``lab.browse`` does, and times, best of R rounds:

- the yardstick: loading the ``transactions`` table whole (``SELECT *``, no
  payloads) through the same Store, as a DataFrame: what a browser that is not paged
  would do before showing anything;
- ``fetch_page``: the first page (20 rows), page 2,000, a status filter;
- a text search (one scan of the payloads);
- loading the page the naive way (JSON pulled out of every row before the LIMIT),
  which is what the browser avoids.

Each figure is shown in ms and as a ratio to the yardstick measured in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def build(path: Path, n: int) -> None:
    import duckdb

    from luthien_lab.store import open_store

    open_store(path).close()  # the schema
    con = duckdb.connect(str(path))
    con.execute(
        "INSERT INTO transactions (transaction_id, started_at, ended_at, status, model, "
        "policy_class, api, streaming) SELECT md5(i::VARCHAR), "
        "TIMESTAMPTZ '2026-01-01 00:00:00+00' + i * INTERVAL 1 SECOND, "
        "TIMESTAMPTZ '2026-01-01 00:00:01+00' + i * INTERVAL 1 SECOND, "
        "CASE WHEN i % 10 = 0 THEN 'blocked' ELSE 'ok' END, 'm' || (i % 3), 'p.P', "
        f"'chat', true FROM range({n}) r(i)"
    )
    request = (
        "json_object('messages', json_array(json_object('role', 'user', "
        "'content', 'prompt ' || i || repeat(' filler', 300))))"
    )
    response = (
        "json_object('choices', json_array(json_object('message', "
        "json_object('content', 'answer ' || i || repeat(' words', 200)))))"
    )
    con.execute(
        f"INSERT INTO payloads SELECT md5(i::VARCHAR), {request}, {request}, "
        f"{response}, {response} FROM range({n}) r(i)"
    )
    con.close()


def best(rounds: int, work) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from luthien_lab.store import open_store
    from luthien_lab.widgets._browse_query import BrowseFilters, fetch_page, where_clause

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.duckdb"
        build(path, args.transactions)
        store = open_store(path, read_only=True)
        condition, params = where_clause(BrowseFilters())
        naive = (
            "SELECT t.*, json_extract_string(p.final_request, '$.messages[#-1].content') AS "
            "prompt, json_extract_string(p.final_response, '$.choices[0].message.content') "
            f"AS response FROM transactions t LEFT JOIN payloads p USING (transaction_id) "
            f"WHERE {condition} ORDER BY t.started_at DESC LIMIT 20"
        )
        rows = {
            "yardstick: transactions whole": lambda: store.sql("SELECT * FROM transactions"),
            "first page (20 rows)": lambda: fetch_page(store, BrowseFilters()),
            "page 2,000": lambda: fetch_page(store, BrowseFilters(), offset=40_000),
            "status filter": lambda: fetch_page(store, BrowseFilters(status="blocked")),
            "text search": lambda: fetch_page(store, BrowseFilters(search="PROMPT 99 ")),
            "naive page (JSON before LIMIT)": lambda: store.sql(naive, params),
        }
        figures = {name: best(args.rounds, work) for name, work in rows.items()}
        yardstick = figures["yardstick: transactions whole"]
        print(f"{args.transactions:,} transactions, best of {args.rounds}")
        for name, seconds in figures.items():
            print(f"  {name:32s} {seconds * 1000:9.1f} ms  {seconds / yardstick:8.2f} x")


if __name__ == "__main__":
    main()
