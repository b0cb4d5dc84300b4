"""Values made fit for JSON: NaN and infinities become null.

JSON has neither NaN nor Infinity (``json.dumps`` writes them anyway, PostgreSQL's
jsonb and strict readers refuse them).  The historian writes sample fields with
this and the experiments their summaries (a time that never settled is null).
"""

from __future__ import annotations

import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every non-finite float as None, inside lists and dicts too (recursively)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [finite(v) for v in value]
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    return value
