"""Export a policy written in a notebook into a production module.

Usage, in a notebook::

    %load_ext luthien_lab.magics        # or %load_ext luthien_lab

    %%policy
    class RedactPolicy(SimplePolicy): ...

    from luthien_lab.exporting import export_policy
    export_policy(RedactPolicy(), "policies/", cases=[{"prompt": "hi", "response": "a secret"}])

This writes, into ``policies/``:

- ``redact_policy.py``: the class with the imports, helper functions and constants it
  uses (found by name analysis of the notebook's cells);
- ``redact_policy.yaml``: ``policy: {class: "redact_policy:RedactPolicy", config: {...}}``,
  the gateway's format; the class path resolves with ``policies/`` on ``sys.path``;
- ``redact_policy_cases.json`` and ``test_redact_policy.py``: the cases tried in the
  notebook and a pytest file replaying them (streaming and not) against the module.

From a saved notebook: ``luthien-lab export --notebook NB.ipynb --class RedactPolicy
--out policies/``. How the class source is found: :mod:`luthien_lab.exporting._source`.
"""

from __future__ import annotations

from luthien_lab.exporting._cases import cases_from_store, replay_case, summarize_response
from luthien_lab.exporting._export import (
    ExportResult,
    export_policy,
    export_source,
    module_name_for,
)
from luthien_lab.exporting._loader import instantiate_policy, load_policy
from luthien_lab.exporting._source import (
    ClassSource,
    find_class_source,
    notebook_class_source,
    remember_cell,
)

__all__ = [
    "ClassSource",
    "ExportResult",
    "cases_from_store",
    "export_policy",
    "export_source",
    "find_class_source",
    "instantiate_policy",
    "load_policy",
    "module_name_for",
    "notebook_class_source",
    "remember_cell",
    "replay_case",
    "summarize_response",
]
