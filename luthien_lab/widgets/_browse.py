"""``TransactionBrowser``: the store's transactions, a page at a time; select one to see it.

A thin ipywidget over ``_browse_query`` (what to ask the store) and ``_browse_render``
(what to draw): the controls edit a :class:`BrowseFilters`, the list shows one
:class:`Page` (``LIMIT``/``OFFSET`` and a count, never the whole store), and selecting
a row draws the recorded transaction with the three views of a notebook run, plus
live vs shadow outputs where it has shadows. Every action is a method too
(``search``, ``set_filters``, ``next_page``, ``select``), which is how tests drive it.
"""

from __future__ import annotations

import threading
from html import escape
from typing import Any

import ipywidgets

from luthien_lab.errors import LuthienLabError
from luthien_lab.runs import TransactionTrace
from luthien_lab.widgets._browse_query import (
    BrowseFilters,
    Page,
    distinct_values,
    fetch_page,
    related,
)
from luthien_lab.widgets._browse_render import (
    HEADER,
    detail_html,
    empty_html,
    pager_text,
    row_label,
)

__all__ = ["TransactionBrowser", "open_for_reading"]

_MONO = "<style>.luthien-browse-list select{font-family:monospace;font-size:12px}</style>"
# Dropdown values are never None (ipywidgets shows None as no selection): "" is "any".
ANY = ""
_SHADOW_CHOICES = (("live only", "live"), ("live and shadows", "all"), ("shadows only", "only"))
_SHADOWS = {"live": None, "all": True, "only": "only"}
_CHOICE_COLUMNS = (
    ("status", "status"),
    ("model", "model"),
    ("policy", "policy_class"),
    ("api", "api"),
)
_TEXT_FIELDS = ("search", "since", "until", "tag", "where")
BROWSE_SCHEMA = 5  # the transactions' api and shadow columns


def open_for_reading(store: Any, lock_timeout: float = 30.0) -> Any:
    """A Store from a Store (as is), or a path (None: the default store), opened
    read-only: the browser never writes, and holds the file only while each query
    runs; ``lock_timeout``: how long a query waits for a writer."""
    from luthien_lab.store import Store, open_store

    opened = (
        store
        if isinstance(store, Store)
        else open_store(store, read_only=True, lock_timeout=lock_timeout)
    )
    # Not ``Store.schema_version``: on an exclusive store's one connection it leaves a
    # result unfetched, which the next query trips over.
    version = int(opened.sql("SELECT max(version) AS v FROM schema_version")["v"].iloc[0])
    if version < BROWSE_SCHEMA:
        from luthien_lab.errors import StoreError

        raise StoreError(
            f"the store {opened.path} has schema version {version}; the "
            f"browser reads version {BROWSE_SCHEMA} (API and shadow columns). Open it once "
            f"writable to migrate it: open_store({str(opened.path)!r}).close()"
        )
    return opened


def _options(values: list[str], current: Any) -> list[tuple[str, Any]]:
    options: list[tuple[str, Any]] = [("any", ANY)]
    if current is not None and not isinstance(current, str):
        current = tuple(current)
        options.append((", ".join(current), current))
    elif current is not None and current not in values:
        values = [current, *values]
    options += [(v, v) for v in values]
    return options


def _to_control(value: Any) -> Any:
    if value is None:
        return ANY
    return tuple(value) if isinstance(value, list | tuple) else value


def _from_control(value: Any) -> Any:
    if value == ANY:
        return None
    return list(value) if isinstance(value, tuple) else value


def _shadow_choice(shadows: Any) -> str:
    return {True: "all", "only": "only"}.get(shadows, "live")


class TransactionBrowser(ipywidgets.VBox):
    """Browse a store's recorded transactions.

    ``TransactionBrowser(store, page_size=20, **filters)``: ``store`` a Store or a
    path; filters as :class:`BrowseFilters` (since, until, status, model, policy, tag,
    api, where, search, shadows, ids). ``.page`` is the page shown, ``.selected`` the
    selected transaction id, ``.detail.value`` its HTML.
    """

    def __init__(self, store: Any = None, *, page_size: int = 20, **filters: Any) -> None:
        if page_size < 1:
            raise ValueError(f"page_size={page_size!r}: give at least 1")
        self.store = open_for_reading(store)
        self.filters = BrowseFilters(**filters)
        self.page_size = page_size
        self.offset = 0
        self.page = Page([], 0, page_size, 0)
        self.selected: str | None = None
        self._lock = threading.RLock()
        self._quiet = False  # set while the code itself changes the controls
        self._build_controls()
        super().__init__(
            [
                *self._header(),
                ipywidgets.HTML(_MONO),
                ipywidgets.HBox([self.search_box, self.shadows, self.refresh_button]),
                ipywidgets.HBox(list(self.choices.values())),
                ipywidgets.HBox([self.since, self.until, self.tag, self.where]),
                self.message,
                ipywidgets.HTML(f"<pre style='margin:0;font-size:12px'>{escape(HEADER)}</pre>"),
                self.list,
                ipywidgets.HBox([self.previous_button, self.pager, self.next_button]),
                self.detail,
            ]
        )
        self.add_class("luthien-browser")
        self.refresh()
        if self.filters.ids and self.page.rows:
            self.select(self.page.rows[0]["transaction_id"])

    def _header(self) -> list[Any]:
        """Widgets above the filters (the watch puts its status there)."""
        return []

    # -- controls ------------------------------------------------------------------------

    def _build_controls(self) -> None:
        f = self.filters

        def text(name: str, value: Any, placeholder: str, width: str) -> ipywidgets.Text:
            box = ipywidgets.Text(
                "" if value is None else str(value),
                placeholder=placeholder,
                continuous_update=False,
                layout={"width": width},
            )
            box.add_class(f"luthien-browse-{name}")
            box.observe(lambda _c: self._controls_changed(), "value")
            return box

        self.search_box = text("search", f.search, "search requests and responses", "40%")
        self.since = text("since", f.since, "since (7d, 2h, ISO time)", "20%")
        self.until = text("until", f.until, "until", "20%")
        self.tag = text("tag", f.tag, "tag (key=value)", "20%")
        self.where = text("where", f.where, "SQL where (status = 'ok')", "40%")
        self.shadows = ipywidgets.Dropdown(
            options=list(_SHADOW_CHOICES),
            value=_shadow_choice(f.shadows),
            layout={"width": "160px"},
        )
        self.shadows.add_class("luthien-browse-shadows")
        self.shadows.observe(lambda _c: self._controls_changed(), "value")
        self.choices: dict[str, ipywidgets.Dropdown] = {}
        for name, column in _CHOICE_COLUMNS:
            current = getattr(f, name)
            box = ipywidgets.Dropdown(
                description=name,
                options=_options(distinct_values(self.store, column), current),
                value=_to_control(current),
                layout={"width": "25%"},
            )
            box.add_class(f"luthien-browse-{name}")
            box.observe(lambda _c: self._controls_changed(), "value")
            self.choices[name] = box
        self.refresh_button = ipywidgets.Button(icon="refresh", tooltip="reload from the store")
        self.refresh_button.add_class("luthien-browse-refresh")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.message = ipywidgets.HTML("")
        self.message.add_class("luthien-browse-message")
        self.list = ipywidgets.Select(options=[], value=None, rows=min(self.page_size, 15))
        self.list.layout.width = "100%"
        self.list.add_class("luthien-browse-list")
        self.list.observe(self._list_changed, "value")
        self.previous_button = ipywidgets.Button(description="◀ previous")
        self.next_button = ipywidgets.Button(description="next ▶")
        self.previous_button.add_class("luthien-browse-previous")
        self.next_button.add_class("luthien-browse-next")
        self.previous_button.on_click(lambda _b: self.previous_page())
        self.next_button.on_click(lambda _b: self.next_page())
        self.pager = ipywidgets.HTML("")
        self.pager.add_class("luthien-browse-pager")
        self.detail = ipywidgets.HTML(empty_html("select a transaction to see it"))
        self.detail.add_class("luthien-browse-detail-pane")

    def _controls_changed(self) -> None:
        if self._quiet:
            return
        changes: dict[str, Any] = {
            name: (getattr(self, "search_box" if name == "search" else name).value or None)
            for name in _TEXT_FIELDS
        }
        for name, box in self.choices.items():
            changes[name] = _from_control(box.value)
        changes["shadows"] = _SHADOWS[self.shadows.value]
        self.set_filters(**changes)

    def _sync_controls(self) -> None:
        """Show ``self.filters`` in the controls (after a change made in code)."""
        f = self.filters
        self._quiet = True
        try:
            self.search_box.value = f.search or ""
            for name in ("since", "until", "tag", "where"):
                value = getattr(f, name)
                getattr(self, name).value = "" if value is None else str(value)
            for name, box in self.choices.items():
                current = getattr(f, name)
                if _to_control(current) not in [v for _label, v in box.options]:
                    box.options = _options([v for _l, v in box.options[1:]], current)
                box.value = _to_control(current)
            self.shadows.value = _shadow_choice(f.shadows)
        finally:
            self._quiet = False

    def _list_changed(self, change: dict[str, Any]) -> None:
        if not self._quiet and change["new"] is not None:
            self.select(change["new"])

    # -- actions -------------------------------------------------------------------------

    def _say(self, error: BaseException | str | None) -> None:
        if error is None:
            self.message.value = ""
            return
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self.message.value = (
            f'<div class="luthien-error" style="color:#c53030;font:12px monospace">'
            f"{escape(text)}</div>"
        )

    def set_filters(self, **changes: Any) -> Page:
        """Change some filters (as :class:`BrowseFilters` fields) and show their first
        page. A bad value is shown in the widget and leaves the list as it was."""
        with self._lock:
            try:
                filters = self.filters.with_(**changes)
                page = fetch_page(self.store, filters, offset=0, limit=self.page_size)
            except (ValueError, TypeError, LuthienLabError) as error:
                self._say(error)
                return self.page
            self.filters = filters
            self._sync_controls()
            self._show(page)
            return page

    def search(self, text: str | None) -> Page:
        """Only transactions whose requests or responses contain ``text``."""
        return self.set_filters(search=text or None)

    def refresh(self) -> Page:
        """Reload the current page from the store (new transactions, new counts)."""
        with self._lock:
            try:
                page = fetch_page(
                    self.store, self.filters, offset=self.offset, limit=self.page_size
                )
            except (ValueError, LuthienLabError) as error:
                self._say(error)
                return self.page
            self._show(page)
            self._refresh_choices()
            return page

    def _refresh_choices(self) -> None:
        self._quiet = True
        try:
            for name, column in _CHOICE_COLUMNS:
                box = self.choices[name]
                options = _options(distinct_values(self.store, column), getattr(self.filters, name))
                if options != list(box.options):
                    value = box.value
                    box.options = options
                    box.value = value if value in [v for _l, v in options] else ANY
        finally:
            self._quiet = False

    def go_to(self, offset: int) -> Page:
        with self._lock:
            offset = max(0, offset)
            page = fetch_page(self.store, self.filters, offset=offset, limit=self.page_size)
            self._show(page)
            return page

    def next_page(self) -> Page:
        return self.go_to(self.offset + self.page_size) if self.page.has_next else self.page

    def previous_page(self) -> Page:
        return self.go_to(self.offset - self.page_size) if self.page.has_previous else self.page

    def _show(self, page: Page) -> None:
        self._say(None)
        self.page, self.offset = page, page.offset
        ids = [row["transaction_id"] for row in page.rows]
        self._quiet = True
        try:
            self.list.options = [(self._label(row), row["transaction_id"]) for row in page.rows]
            self.list.value = self.selected if self.selected in ids else None
        finally:
            self._quiet = False
        self.pager.value = escape(pager_text(page))
        self.previous_button.disabled = not page.has_previous
        self.next_button.disabled = not page.has_next

    def select(self, transaction_id: str | None) -> str:
        """Show one transaction (by id; it need not be on the page): its three views,
        and live vs shadow outputs when it has shadows. Returns the detail's HTML."""
        with self._lock:
            self.selected = transaction_id
            if transaction_id is None:
                self.detail.value = empty_html("select a transaction to see it")
                return self.detail.value
            try:
                self.detail.value = self.render(transaction_id)
            except LuthienLabError as error:
                self._say(error)
                self.detail.value = empty_html(f"could not load {transaction_id}")
            if self.list.value != transaction_id and transaction_id in self._page_ids():
                self._quiet = True
                try:
                    self.list.value = transaction_id
                finally:
                    self._quiet = False
            return self.detail.value

    def _label(self, row: dict[str, Any]) -> str:
        """A row's line in the list (the watch marks new ones)."""
        return row_label(row)

    def _page_ids(self) -> list[str]:
        return [row["transaction_id"] for row in self.page.rows]

    def render(self, transaction_id: str) -> str:
        """The detail HTML of one transaction (what selecting it shows)."""
        from luthien_lab.errors import StoreError

        linked = related(self.store, transaction_id)
        rows = {row["transaction_id"]: row for row in linked}
        if transaction_id not in rows:
            found = fetch_page(
                self.store, BrowseFilters(ids=[transaction_id]), offset=0, limit=1
            ).rows
            if not found:
                raise StoreError(f"no transaction {transaction_id!r} in {self.store.path}")
            rows[transaction_id] = found[0]
        traces = {tid: TransactionTrace.from_store(self.store, tid) for tid in rows}
        pairs = [(row, traces[row["transaction_id"]]) for row in linked]
        return detail_html(rows[transaction_id], traces[transaction_id], pairs)

    def __repr__(self) -> str:
        return (
            f"<TransactionBrowser {self.page.total} transactions, page "
            f"{self.page.number}/{self.page.pages}, selected={self.selected is not None}>"
        )
