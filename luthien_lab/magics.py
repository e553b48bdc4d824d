"""IPython magics: ``%%policy`` remembers the source of the classes a cell defines.

Load with ``%load_ext luthien_lab.magics`` (or ``%load_ext luthien_lab`` once the
package re-exports :func:`load_ipython_extension`). A cell starting with
``%%policy`` runs as usual; every top-level class it defines is recorded so that
:func:`luthien_lab.exporting.export_policy` finds its source, which
``inspect.getsource`` cannot for a class defined in a notebook cell.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension", "policy_cell"]


def policy_cell(shell: Any, line: str, cell: str) -> Any:
    """Run ``cell`` in ``shell`` and remember the classes it defined."""
    from luthien_lab.exporting._source import remember_cell

    # run_cell (as %%capture does) rather than exec: the cell gets IPython syntax,
    # top-level await, tracebacks and display of its last value.
    result = shell.run_cell(cell, store_history=False)
    if result.success:
        remember_cell(cell, shell.user_ns)
    return None


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext``: register ``%%policy``."""

    def policy(line: str, cell: str) -> Any:
        return policy_cell(ipython, line, cell)

    policy.__doc__ = policy_cell.__doc__
    ipython.register_magic_function(policy, magic_kind="cell", magic_name="policy")
