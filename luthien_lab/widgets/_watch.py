"""``TransactionWatch``: the browser, kept up to date while the gateway records.

The notebook and the gateway are two processes sharing the store file. The watch
never holds it: the store is opened read-only in shared mode (each query attaches the
file read-only for its own duration, under the store's shared lock, see
``store/_attach.py``), and a background thread asks one cheap question per
``interval`` (``count(*)`` and ``max(ended_at)`` of ``transactions``). Only when the
answer changes is the list reloaded (one page, as in the browser). ``stop()`` (or the
Stop button, or closing the widget) ends the thread and joins it.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Callable
from html import escape
from typing import Any

import ipywidgets

from luthien_lab.errors import LuthienLabError
from luthien_lab.widgets._browse import TransactionBrowser, open_for_reading
from luthien_lab.widgets._browse_query import fetch_page, store_summary

__all__ = ["StorePoller", "TransactionWatch"]

WATCH_LOCK_TIMEOUT = 2.0  # seconds a poll waits for a writer before trying next time

_running: weakref.WeakSet[StorePoller] = weakref.WeakSet()


class StorePoller:
    """Calls ``on_change(count, latest)`` when the store's transaction count or latest
    end time changes; polls every ``interval`` seconds in one daemon thread once
    started. ``poll_once()`` does one poll in the caller's thread (tests)."""

    def __init__(
        self,
        store: Any,
        on_change: Callable[[int, Any], None],
        *,
        interval: float = 1.0,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval={interval!r}: give a positive number of seconds")
        self.store = store
        self.on_change = on_change
        self.on_error = on_error
        self.interval = interval
        self.last: tuple[int, Any] | None = None
        self.polls = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<StorePoller running={self.running} polls={self.polls}>"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def poll_once(self) -> bool:
        """One poll; True when the store changed since the last one."""
        self.polls += 1
        try:
            summary = store_summary(self.store)
        except LuthienLabError as error:  # locked for longer than a poll waits: next time
            if self.on_error is not None:
                self.on_error(error)
            return False
        if summary == self.last:
            return False
        self.last = summary
        self.on_change(*summary)
        return True

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._main, name="luthien-lab-watch", daemon=True)
        _running.add(self)
        self._thread.start()

    def _main(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll_once()
            except Exception as error:  # never let the thread die silently
                if self.on_error is not None:
                    self.on_error(error)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling and join the thread (a poll in progress finishes first)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        _running.discard(self)


@atexit.register
def _stop_all() -> None:
    for poller in list(_running):
        poller.stop(timeout=2.0)


class TransactionWatch(TransactionBrowser):
    """A :class:`TransactionBrowser` that shows new transactions as they are recorded.

    ``TransactionWatch(store, interval=1.0, start=True, page_size=20, **filters)``.
    ``new_count``: transactions recorded since the watch started; ``new_ids``: those
    seen on the list's first page since then. ``stop()`` ends the polling thread.
    """

    def __init__(
        self,
        store: Any = None,
        *,
        interval: float = 1.0,
        start: bool = True,
        page_size: int = 20,
        **filters: Any,
    ) -> None:
        store = open_for_reading(store, lock_timeout=WATCH_LOCK_TIMEOUT)
        self._changed = threading.Condition()
        self.new_ids: list[str] = []
        self.new_count = 0
        self._first_count: int | None = None
        self.status = ipywidgets.HTML("")
        self.status.add_class("luthien-watch-status")
        self.stop_button = ipywidgets.Button(description="Stop", icon="stop")
        self.stop_button.add_class("luthien-watch-stop")
        self.stop_button.on_click(lambda _b: self.stop())
        super().__init__(store, page_size=page_size, **filters)
        self._seen = {row["transaction_id"] for row in self.page.rows}
        self.poller = StorePoller(
            self.store, self._store_changed, interval=interval, on_error=self._say
        )
        self.add_class("luthien-watch")
        self.poller.poll_once()
        if start:
            self.poller.start()
        self._show_status()

    def _header(self) -> list[Any]:
        return [ipywidgets.HBox([self.status, self.stop_button])]

    def _store_changed(self, count: int, _latest: Any) -> None:
        with self._lock:
            if self._first_count is None:
                self._first_count = count
            else:
                try:
                    page = fetch_page(
                        self.store, self.filters, offset=self.offset, limit=self.page_size
                    )
                except LuthienLabError as error:  # locked past a poll's wait: next time
                    self._say(error)
                    self.poller.last = None  # so that the next poll reloads
                    return
                fresh = [
                    row["transaction_id"]
                    for row in page.rows
                    if row["transaction_id"] not in self._seen
                ]
                self._seen.update(fresh)
                self.new_ids = fresh + self.new_ids
                self.new_count = count - self._first_count
                self._show(page)  # after new_ids, so that the new rows are marked
                self._refresh_choices()
            self._show_status()
        with self._changed:
            self._changed.notify_all()

    def _label(self, row: dict[str, Any]) -> str:
        label = super()._label(row)
        return f"● {label}" if row["transaction_id"] in self.new_ids else f"  {label}"

    def _show_status(self) -> None:
        state = "watching" if self.poller.running else "stopped"
        self.status.value = (
            f'<span style="font:12px sans-serif">{escape(state)} · '
            f"{self.new_count} new transaction{'s' if self.new_count != 1 else ''}</span>"
        )
        self.stop_button.disabled = not self.poller.running

    def wait_for(self, count: int, timeout: float = 30.0) -> int:
        """Block until ``count`` new transactions were recorded since the watch started
        (or ``timeout`` seconds passed); returns ``new_count``. Polls itself when the
        thread is not running."""
        import time

        deadline = time.monotonic() + timeout
        with self._changed:
            while self.new_count < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if self.poller.running:
                    self._changed.wait(min(left, self.poller.interval))
                else:
                    self._changed.release()
                    try:
                        if not self.poller.poll_once():
                            time.sleep(min(left, self.poller.interval))
                    finally:
                        self._changed.acquire()
        return self.new_count

    def stop(self) -> None:
        """Stop watching (the thread is joined); the list stays as it was."""
        self.poller.stop()
        self._show_status()

    def close(self) -> None:
        self.stop()
        super().close()

    def __repr__(self) -> str:
        state = "watching" if self.poller.running else "stopped"
        return f"<TransactionWatch {state}, {self.new_count} new transactions>"
