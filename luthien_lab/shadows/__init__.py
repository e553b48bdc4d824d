"""Shadow policies: candidate policies that see every live transaction's request and
upstream answer (no second upstream call), whose output is recorded beside the live
transaction and never sent.

    from luthien_lab.shadows import Shadows

    shadows = Shadows({"candidate": StringReplacePolicy(replacements={"a": "b"})},
                      listeners=[recorder])
    orchestrator.add_listener(shadows)      # what the gateway does for ``shadow:``
    ...
    shadows.close()

Guarantees: a shadow that raises, hangs (awaiting forever or blocking its thread) or
falls behind never delays or changes a live response; each shadow runs on its own
thread with its own event loop, from its own copies of the request and chunks; what
it cannot keep up with is dropped, counted (``shadow_dropped``) and its run recorded
``incomplete``.
"""

from luthien_lab.shadows._feed import INCOMPLETE, ShadowIncompleteError
from luthien_lab.shadows._names import name_shadows
from luthien_lab.shadows._runner import ShadowRunner
from luthien_lab.shadows._spec import shadows_from_spec
from luthien_lab.shadows._tap import DEFAULT_SHADOW_BUFFER, DEFAULT_SHADOW_GRACE, Shadows

__all__ = [
    "DEFAULT_SHADOW_BUFFER",
    "DEFAULT_SHADOW_GRACE",
    "INCOMPLETE",
    "ShadowIncompleteError",
    "ShadowRunner",
    "Shadows",
    "name_shadows",
    "shadows_from_spec",
]
