"""What one experiment run leaves behind: its recording and its result.

Kept apart from :mod:`.runner` (which produces them) and :mod:`.report` (which
reads them) so that neither imports the other: the report depends on the data
types only, and the runner on the report.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..control.main import MainController
from ..control.statemachine import StateMachine
from .cases import Case


@dataclass
class Recording:
    """Every recorded sample: per topic, rows of (simulated time, id, fields)."""

    rows: dict[str, list[tuple[float, str, dict[str, Any]]]] = field(default_factory=lambda: defaultdict(list))

    def add(self, t: float, topic: str, object_id: str, fields: dict[str, Any]) -> None:
        self.rows[topic].append((t, object_id, fields))

    def series(self, topic: str, object_id: str, name: str) -> tuple[list[float], list[Any]]:
        points = [(t, f[name]) for t, i, f in self.rows.get(topic, []) if i == object_id]
        return [t for t, _ in points], [v for _, v in points]


@dataclass
class Result:
    case: Case
    speed: float
    recording: Recording
    main: MainController
    controllers: list[StateMachine]
    ready_at: float | None
    ended_at: float
    events: list[tuple[float, str]]
    wall_seconds: float = math.nan  # wall time from simulated 0 (the epoch) to the end
    partition: str = ""  # the DDS partition the run used

    @property
    def effective_speed(self) -> float:
        """Simulated seconds per wall second achieved (below ``speed`` when the testbed was starved)."""
        return self.ended_at / self.wall_seconds if self.wall_seconds > 0 else math.nan
