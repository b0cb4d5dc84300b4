"""A benchmark's goals as rows: what was measured against the target the issue set."""

from __future__ import annotations

from typing import Any


def goal(text: str, value: float | None, target: float, at_least: bool = False, **where: Any) -> dict[str, Any]:
    """``value`` against ``target``: met when at or under it (at or over it with ``at_least``)."""
    met = value is not None and (value >= target if at_least else value <= target)
    return {"goal": text, **where, "value": value, "target": f"{'>=' if at_least else '<='} {target:g}", "met": met}
