"""Running one prompt through a policy, traced: the engine behind ``lab.run`` and the
notebook widgets (which hold only the views). Importing it needs no ipywidgets.

- :func:`execute`: one prompt, one policy, one client -> a :class:`RunResult`;
  :func:`build_request`, :func:`resolve_policy`, :class:`RunHandle` (stop a run);
- :class:`TransactionTrace`: one transaction as plain lists, filled live by a
  :class:`TraceListener` or from the store; every view draws from it;
- :func:`background_loop`: the one event loop blocking calls run on (``lab.run``).
"""

from luthien_lab.runs._execute import (
    DEFAULT_MODEL,
    RunHandle,
    build_request,
    execute,
    resolve_policy,
)
from luthien_lab.runs._listener import TraceListener
from luthien_lab.runs._loop import LoopThread, background_loop, shutdown
from luthien_lab.runs._records import (
    CHUNK_COLUMNS,
    HOOK_COLUMNS,
    ChunkRecord,
    HookRecord,
    chunk_payload,
    summarize_response,
)
from luthien_lab.runs._result import RunResult
from luthien_lab.runs._trace import TransactionTrace

__all__ = [
    "CHUNK_COLUMNS",
    "DEFAULT_MODEL",
    "HOOK_COLUMNS",
    "ChunkRecord",
    "HookRecord",
    "LoopThread",
    "RunHandle",
    "RunResult",
    "TraceListener",
    "TransactionTrace",
    "background_loop",
    "build_request",
    "chunk_payload",
    "execute",
    "resolve_policy",
    "shutdown",
    "summarize_response",
]
