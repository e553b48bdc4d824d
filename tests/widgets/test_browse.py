"""The transaction browser without a browser: its queries (filters, search, paging),
its pure HTML, and the widget's state (selection, paging, filters, search)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from luthien_lab.errors import StoreError
from luthien_lab.runs import TransactionTrace
from luthien_lab.store import Store, open_store
from luthien_lab.widgets import BrowseFilters, TransactionBrowser
from luthien_lab.widgets._browse_query import fetch_page, literal_pattern, related
from luthien_lab.widgets._browse_render import detail_html, pager_text, row_label
from tests.widgets.browse_store import fill

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def filled():
    store = Store.memory()
    ids = fill(store)
    yield store, ids
    store.close()


def listed(store, **filters):
    page = fetch_page(store, BrowseFilters(**filters), limit=100)
    return {row["transaction_id"] for row in page.rows}


def named(ids, *names):
    return {ids[n] for n in names}


LIVE = ("weather", "hello", "lima", "filler0", "filler1", "filler2")


# ----- times ---------------------------------------------------------------------------


def test_bad_filters_name_the_value():
    with pytest.raises(ValueError, match="since='last week'"):
        BrowseFilters(since="last week")
    with pytest.raises(ValueError, match="until=3"):
        BrowseFilters(until=3)
    with pytest.raises(ValueError, match="api='grpc'"):
        BrowseFilters(api="grpc")
    with pytest.raises(ValueError, match="tag=\\{"):
        BrowseFilters(tag={"team": "red"})
    with pytest.raises(ValueError, match="shadows='maybe'"):
        BrowseFilters(shadows="maybe")
    with pytest.raises(ValueError, match="status=3"):
        BrowseFilters(status=3)
    with pytest.raises(ValueError, match="tag='=x'"):
        BrowseFilters(tag="=x")


# ----- filters and search --------------------------------------------------------------


def test_default_lists_live_transactions_newest_first(filled):
    store, ids = filled
    page = fetch_page(store, BrowseFilters(), limit=100)
    assert {r["transaction_id"] for r in page.rows} == named(ids, *LIVE)
    assert page.total == 6
    times = [r["started_at"] for r in page.rows]
    assert times == sorted(times, reverse=True)
    weather = next(r for r in page.rows if r["transaction_id"] == ids["weather"])
    assert weather["shadows"] == 2 and weather["prompt"] == "What is the weather in Paris?"
    assert weather["response"] == "SUNNY IN PARIS"


def test_filters(filled):
    store, ids = filled
    assert listed(store, model="claude-haiku") == named(ids, "lima")
    assert listed(store, model=["claude-haiku", "gpt-4o-mini"]) == named(ids, *LIVE)
    assert listed(store, api="messages") == named(ids, "lima")
    assert listed(store, policy="UppercasePolicy") == named(ids, "weather")
    qualified = "luthien_lab.policies.uppercase.UppercasePolicy"
    assert listed(store, policy=qualified) == named(ids, "weather")
    assert listed(store, status="ok") == named(ids, *LIVE)
    assert listed(store, status="blocked") == set()
    assert listed(store, tag="team=red") == named(ids, "lima")
    assert listed(store, tag="team") == named(ids, "lima")
    assert listed(store, tag="team=blue") == set()
    assert listed(store, where="model LIKE 'claude%'") == named(ids, "lima")
    assert listed(store, since="1h") == named(ids, *LIVE)
    assert listed(store, until="1h") == set()


def test_search_is_case_insensitive_text_in_requests_and_responses(filled):
    store, ids = filled
    assert listed(store, search="LIMA") == named(ids, "lima")
    assert listed(store, search="sunny") == named(ids, "weather")  # in the response
    assert listed(store, search="filler prompt 1") == named(ids, "filler1")
    assert listed(store, search="50%") == set()  # % is a character, not a wildcard
    assert listed(store, search="filler.prompt") == set()  # . too
    assert listed(store, search="FILLER PROMPT") == named(ids, "filler0", "filler1", "filler2")
    assert listed(store, search=ids["hello"][:10]) == named(ids, "hello")  # an id prefix


def test_search_patterns_are_literal():
    import duckdb

    def matches(term, text):
        query = "SELECT regexp_matches(?, ?)"
        return duckdb.execute(query, [text, literal_pattern(term)]).fetchall()[0][0]

    assert matches("a\\Eb(", "xA\\EB(y") and not matches("a\\Eb(", "ab(")
    assert matches("[x]+", "a [X]+ b") and not matches("[x]+", "xx")


def test_shadows_are_hidden_unless_asked(filled):
    store, ids = filled
    assert listed(store, shadows="only") == named(ids, "shadow_a", "shadow_b")
    assert listed(store, shadows=True) == named(ids, *LIVE, "shadow_a", "shadow_b")
    assert listed(store, search="rainy") == set()
    assert listed(store, search="rainy", shadows=True) == named(ids, "shadow_b")
    # Given ids are listed whatever they are.
    assert listed(store, ids=[ids["shadow_b"], ids["hello"]]) == named(ids, "shadow_b", "hello")


def test_a_bad_where_is_a_clear_error(filled):
    store, _ = filled
    with pytest.raises(StoreError, match="where='no_such_column = 1'"):
        fetch_page(store, BrowseFilters(where="no_such_column = 1"))


def test_related_lists_live_then_shadows(filled):
    store, ids = filled
    expected = [ids["weather"], ids["shadow_a"], ids["shadow_b"]]
    for tid in expected:
        assert [r["transaction_id"] for r in related(store, tid)] == expected
    assert related(store, ids["hello"]) == []


@pytest.fixture(scope="module")
def big():
    """5,000 transactions written in bulk, one in ten blocked."""
    store = Store.memory()
    store.sql(
        "INSERT INTO transactions (transaction_id, started_at, ended_at, status, model, "
        "policy_class, api, streaming) SELECT printf('tx%05d', i), "
        "TIMESTAMPTZ '2026-01-01 00:00:00+00' + i * INTERVAL 1 MINUTE, "
        "TIMESTAMPTZ '2026-01-01 00:00:01+00' + i * INTERVAL 1 MINUTE, "
        "CASE WHEN i % 10 = 0 THEN 'blocked' ELSE 'ok' END, 'm', 'p.P', 'chat', true "
        "FROM range(5000) r(i)",
        [],
    )
    store.sql(
        "INSERT INTO payloads SELECT printf('tx%05d', i), NULL, "
        "json_object('messages', json_array(json_object('role', 'user', "
        "'content', 'prompt ' || i))), NULL, json_object('choices', json_array("
        "json_object('message', json_object('content', 'answer ' || i)))) "
        "FROM range(5000) r(i)",
        [],
    )
    yield store
    store.close()


class Spy:
    """A store that counts the rows each query returned."""

    def __init__(self, store):
        self.store, self.path, self.returned = store, store.path, []

    def sql(self, query, params=None):
        frame = self.store.sql(query, params)
        self.returned.append(len(frame))
        return frame


def test_paging_reads_a_page_not_the_store(big):
    spy = Spy(big)
    seen = []
    offset = 0
    while True:
        page = fetch_page(spy, BrowseFilters(status="blocked"), offset=offset, limit=100)
        seen += [r["transaction_id"] for r in page.rows]
        if not page.has_next:
            break
        offset += 100
    assert page.total == 500 and page.pages == 5 and page.number == 5
    assert len(seen) == len(set(seen)) == 500
    assert seen[0] == "tx04990" and seen[-1] == "tx00000"  # newest first
    assert max(spy.returned) == 100  # no query returned more than a page
    middle = fetch_page(big, BrowseFilters(), offset=2500, limit=7)
    assert middle.rows[0]["transaction_id"] == "tx02499"
    assert pager_text(middle) == "2501–2507 of 5000 transactions · page 358/715"
    # Past the end (the list shrank): the last page.
    assert fetch_page(big, BrowseFilters(), offset=9000, limit=100).offset == 4900


def test_time_range(big):
    since = dt.datetime(2026, 1, 1, 1, 0, tzinfo=dt.UTC)
    page = fetch_page(big, BrowseFilters(since=since, until=since + dt.timedelta(minutes=30)))
    assert page.total == 30 and page.rows[0]["transaction_id"] == "tx00089"


# ----- rendering -----------------------------------------------------------------------


def test_row_labels(filled):
    store, ids = filled
    rows = {
        r["transaction_id"]: r
        for r in fetch_page(store, BrowseFilters(shadows=True), limit=100).rows
    }
    weather = row_label(rows[ids["weather"]])
    assert "UppercasePolicy" in weather and "What is the weather in Paris?" in weather
    assert weather.endswith("SUNNY IN PARIS  [2 shadows]")
    assert "[get_weather]" in row_label(rows[ids["lima"]])
    assert "messages" in row_label(rows[ids["lima"]])
    assert row_label(rows[ids["shadow_a"]]).endswith("[shadow candidate-a]")
    assert pager_text(fetch_page(store, BrowseFilters(status="error"))) == "no transactions match"


def test_detail_shows_three_views_and_live_vs_shadow(filled):
    store, ids = filled
    linked = related(store, ids["weather"])
    pairs = [(row, TransactionTrace.from_store(store, row["transaction_id"])) for row in linked]
    html = detail_html(linked[0], pairs[0][1], pairs)
    for marker in ("luthien-raw", "luthien-transformed", "svg", "luthien-diff"):
        assert marker in html
    assert html.index("live vs shadow") < html.index("raw vs transformed")
    assert "shadow candidate-a · UppercasePolicy · ok · same as live" in html
    assert "shadow candidate-b · NoOpPolicy · ok · differs from live · 2 chunks dropped" in html
    assert "<del" in html and "RAINY" not in html and "Rainy" in html
    alone = detail_html(
        linked[0] | {"shadows": 0}, TransactionTrace.from_store(store, ids["hello"]), []
    )
    assert "live vs shadow" not in alone and "hook timeline" in alone


# ----- the widget ----------------------------------------------------------------------


def test_browser_pages_and_selects(filled):
    store, ids = filled
    browser = TransactionBrowser(store, page_size=4)
    assert len(browser.list.options) == 4 and browser.list.value is None
    assert browser.pager.value == "1–4 of 6 transactions · page 1/2"
    assert browser.previous_button.disabled and not browser.next_button.disabled
    first = [v for _label, v in browser.list.options]
    browser.next_button.click()
    second = [v for _label, v in browser.list.options]
    assert len(second) == 2 and not set(first) & set(second)
    assert set(first + second) == named(ids, *LIVE)
    assert browser.next_button.disabled and not browser.previous_button.disabled
    browser.list.value = second[0]  # what a click in the list does
    assert browser.selected == second[0]
    assert "hook timeline" in browser.detail.value
    browser.previous_page()
    assert [v for _l, v in browser.list.options] == first and browser.list.value is None
    assert repr(browser) == "<TransactionBrowser 6 transactions, page 1/2, selected=True>"


def test_browser_filters_and_search_through_its_controls(filled):
    store, ids = filled
    browser = TransactionBrowser(store)
    browser.search_box.value = "lima"
    assert [v for _l, v in browser.list.options] == [ids["lima"]]
    assert browser.filters.search == "lima"
    browser.search_box.value = ""
    assert len(browser.list.options) == 6
    assert ("claude-haiku", "claude-haiku") in browser.choices["model"].options
    browser.choices["model"].value = "claude-haiku"
    assert [v for _l, v in browser.list.options] == [ids["lima"]]
    browser.choices["model"].value = ""  # "any"
    browser.shadows.value = "only"
    assert {v for _l, v in browser.list.options} == named(ids, "shadow_a", "shadow_b")
    browser.set_filters(shadows=None, status="ok", search="Paris")
    assert browser.search_box.value == "Paris" and browser.choices["status"].value == "ok"
    assert browser.shadows.value == "live" and browser.choices["model"].value == ""
    assert [v for _l, v in browser.list.options] == [ids["weather"]]


def test_browser_shows_bad_input_and_keeps_its_list(filled):
    store, _ = filled
    browser = TransactionBrowser(store)
    before = list(browser.list.options)
    browser.where.value = "nonsense =="
    assert "where=&#x27;nonsense ==&#x27;" in browser.message.value
    assert list(browser.list.options) == before and browser.filters.where is None
    browser.where.value = ""
    browser.since.value = "yesterday-ish"
    assert "since=&#x27;yesterday-ish&#x27;" in browser.message.value
    browser.since.value = "1h"
    assert browser.message.value == "" and len(browser.list.options) == 6


def test_browser_opens_given_ids_and_selects_the_first(filled):
    store, ids = filled
    browser = TransactionBrowser(store, ids=[ids["shadow_b"], ids["hello"]])
    assert {v for _l, v in browser.list.options} == named(ids, "shadow_b", "hello")
    assert browser.selected == browser.list.value == browser.page.rows[0]["transaction_id"]
    html = browser.select(ids["shadow_b"])
    assert "shadow of" in html and "live vs shadow" in html
    assert "could not load" in browser.select("no-such-id")
    assert "no transaction &#x27;no-such-id&#x27;" in browser.message.value


def test_browser_given_a_path_reads_it_read_only(tmp_path):
    path = tmp_path / "runs.duckdb"
    with open_store(path) as writable:
        from tests.widgets.browse_store import record

        tid = record(writable, "hi", ["there"])
    browser = TransactionBrowser(str(path))
    assert browser.store.read_only and not browser.store.exclusive
    assert [v for _l, v in browser.list.options] == [tid]
    with pytest.raises(StoreError, match="no store at"):
        TransactionBrowser(str(tmp_path / "missing.duckdb"))


def test_an_old_store_is_refused_with_the_fix(tmp_path):
    import duckdb

    from luthien_lab.store._schema import migrate

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    migrate(con, upto=4)
    con.close()
    with pytest.raises(StoreError, match=r"schema version 4.*open_store"):
        TransactionBrowser(str(path))
    open_store(path).close()  # migrates
    assert TransactionBrowser(str(path)).page.total == 0


@pytest.mark.timeout(240)
def test_browsing_a_recorded_store_never_imports_litellm(tmp_path):
    path = tmp_path / "runs.duckdb"
    with open_store(path) as writable:
        ids = fill(writable)
    code = f"""
    from luthien_lab import lab
    browser = lab.browse({str(path)!r}, page_size=3, search="Paris")
    assert browser.page.total == 1, browser.page
    html = browser.select({ids["weather"]!r})
    assert "live vs shadow" in html and "hook timeline" in html
    watch = lab.watch({str(path)!r}, interval=0.05)
    watch.stop()
    import json, sys
    print("LITELLM " + json.dumps(sorted(m for m in sys.modules if m.startswith("litellm"))))
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=200,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("LITELLM "))
    assert json.loads(line.removeprefix("LITELLM ")) == []
