"""Notebook widgets: the live prompt runner, the hook timeline and the raw-vs-transformed diff.

    from luthien_lab.widgets import PromptRunner, Timeline, ResponseDiff

    PromptRunner()                          # type a prompt, pick model + policy, Run / Stop
    Timeline.from_store(store, tx_id)       # a recorded transaction's hook timeline
    ResponseDiff.from_store(store, tx_id)   # what the policy changed
    TransactionBrowser(store, search="Lima")  # recorded transactions, filtered, paged
    TransactionWatch(store)                 # ... updated as the gateway records

Views only. Every view draws from a :class:`~luthien_lab.runs.TransactionTrace`, filled
either live by a :class:`~luthien_lab.runs.TraceListener` (the orchestrator's
instrumentation, the same events the recorder gets) or from a recording
(``TransactionTrace.from_store``); running a prompt is :mod:`luthien_lab.runs`
(``RunResult``, ``TransactionTrace`` and ``TraceListener`` are re-exported here).
Needs the ``lab`` extra (ipywidgets).
"""

from luthien_lab.runs import RunResult, TraceListener, TransactionTrace
from luthien_lab.widgets._batching import Throttle
from luthien_lab.widgets._browse import TransactionBrowser
from luthien_lab.widgets._browse_query import BrowseFilters
from luthien_lab.widgets._diff import ResponseDiff, compare_tool_calls, word_diff
from luthien_lab.widgets._runner import PromptRunner, RunPanel, discover_policies
from luthien_lab.widgets._timeline import Timeline, TimelineDrawing, draw_timeline
from luthien_lab.widgets._watch import TransactionWatch

__all__ = [
    "BrowseFilters",
    "PromptRunner",
    "ResponseDiff",
    "RunPanel",
    "RunResult",
    "Throttle",
    "Timeline",
    "TimelineDrawing",
    "TraceListener",
    "TransactionBrowser",
    "TransactionTrace",
    "TransactionWatch",
    "compare_tool_calls",
    "discover_policies",
    "draw_timeline",
    "word_diff",
]
