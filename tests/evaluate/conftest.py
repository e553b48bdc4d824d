from __future__ import annotations

import sys
from pathlib import Path

# examples/ is not a package on the path; its policies are used as test subjects.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
