"""Closing recorders when the process ends, so that nothing finished is lost.

At exit (the end of a script or of ``luthien-lab demo``, a kernel shutdown, Ctrl-C)
every recorder still open is closed: what it holds is written and the writer thread
stops before the interpreter goes away. Two things stood in the way:

- ``atexit`` runs the last-registered function first, and DuckDB registers one of
  its own when it is imported (after this module, since the Store imports it
  lazily); it interrupts queries still running ("INTERRUPT Error: Interrupted!") and
  makes later ones fail ("this query cannot run Python code: the Python interpreter
  is shutting down"). So each new recorder registers :func:`close_all` again, which
  puts it ahead of DuckDB's (DuckDB is imported by then).
- SIGTERM ends a Python process at once by default, without ``atexit``. When nothing
  else handles it (the handler is the default, and this is the main thread) a
  handler is installed: while a recorder is open it raises ``SystemExit(143)``, so
  the process unwinds (``finally`` blocks, then ``atexit``, which closes recorders)
  and exits with the code a shell gives a SIGTERM'd process; with no recorder open
  it does what the default does. A second SIGTERM ends the process at once.
  Applications with their own handling (uvicorn's graceful shutdown, which closes
  the gateway's recorder) keep it: theirs replaces this one.
"""

from __future__ import annotations

import atexit
import logging
import signal
import threading
import weakref
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from luthien_lab.store._recorder import DuckDBRecorder

__all__ = ["close_all", "track", "untrack"]

log = logging.getLogger("luthien_lab.store")

_LIVE: weakref.WeakSet[DuckDBRecorder] = weakref.WeakSet()


def close_all() -> None:
    """Close every recorder still open (at exit)."""
    for recorder in list(_LIVE):
        try:
            recorder.close()
        except Exception:  # the recorder logged what failed; go on with the others
            log.debug("closing a recorder at exit failed", exc_info=True)


def track(recorder: DuckDBRecorder) -> None:
    """Close ``recorder`` at exit unless it is closed before."""
    _LIVE.add(recorder)
    atexit.unregister(close_all)
    atexit.register(close_all)
    _handle_sigterm()


def untrack(recorder: DuckDBRecorder) -> None:
    _LIVE.discard(recorder)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # A second SIGTERM, or one with nothing to write, ends the process at once.
    signal.signal(signum, signal.SIG_DFL)
    if not _LIVE:
        signal.raise_signal(signum)
        return
    raise SystemExit(128 + signum)


def _handle_sigterm() -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not the main interpreter
        pass
