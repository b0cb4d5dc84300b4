"""Time alignment of several PMUs' frames: the heart of a PDC (and of a multi-PMU C37.118 stream).

A set is one measurement time.  It opens when the first frame of that time arrives and is
released when every PMU has arrived or its wait window has passed, whichever is first;
PMUs absent then are MISSING.  A frame that arrives after its set was released is LATE:
the set comes out again with that PMU filled in and marked LATE (while it is among the
last ``retain`` sets; older frames are only counted).  Sets come out in time order:
releasing a set releases every older open set first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

ON_TIME, LATE, MISSING = "ON_TIME", "LATE", "MISSING"
TICKS = 1_000_000  # sets are keyed by measurement time in microseconds


@dataclass
class Arrived:
    """One PMU's frame in a set: what it carried and when it came (UTC seconds)."""

    item: Any
    arrival: float
    status: str = ON_TIME


@dataclass
class AlignedSet:
    """The frames of one measurement time (``key`` microseconds since 1970, UTC)."""

    key: int
    opened: float
    frames: dict[str, Arrived] = field(default_factory=dict)
    revision: int = 0  # 0 when first released, +1 for each late frame added after

    @property
    def time(self) -> float:
        return self.key / TICKS

    def status(self, pmu_id: str) -> str:
        got = self.frames.get(pmu_id)
        return MISSING if got is None else got.status


class Aligner:
    """Aligns frames of ``pmu_ids`` by measurement time with a wait window (seconds)."""

    def __init__(self, pmu_ids: Sequence[str], window: float, retain: int = 256) -> None:
        self.pmu_ids = list(pmu_ids)
        self.window = window
        self.retain = retain
        self._open: dict[int, AlignedSet] = {}
        self._released: OrderedDict[int, AlignedSet] = OrderedDict()
        self.dropped_late = 0  # late frames older than every retained set

    def add(self, pmu_id: str, utc: float, item: Any, now: float) -> list[AlignedSet]:
        """Take one PMU's frame of measurement time ``utc``; return the sets it releases."""
        key = round(utc * TICKS)
        done = self._released.get(key)
        if done is not None:
            if pmu_id not in done.frames or done.frames[pmu_id].status == LATE:
                done.frames[pmu_id] = Arrived(item, now, LATE)
                done.revision += 1
                return [done]
            return []  # a duplicate of a frame already in the set
        if self._released and key < next(iter(self._released)):
            self.dropped_late += 1
            return []
        if self._released and key < next(reversed(self._released)):
            # a time whose set was never opened, now older than released ones: late on its own
            return [AlignedSet(key, now, {pmu_id: Arrived(item, now, LATE)}, revision=1)]
        aligned = self._open.get(key)
        if aligned is None:
            aligned = self._open[key] = AlignedSet(key, now)
        aligned.frames[pmu_id] = Arrived(item, now)
        if all(p in aligned.frames for p in self.pmu_ids):
            return self._release_through(key)
        return []

    def expire(self, now: float) -> list[AlignedSet]:
        """Release the sets whose window has passed (and every older one)."""
        due = [k for k, s in self._open.items() if now >= s.opened + self.window]
        return self._release_through(max(due)) if due else []

    def next_deadline(self) -> float | None:
        """When the oldest open set's window ends (UTC seconds), None when none is open."""
        return min((s.opened + self.window for s in self._open.values()), default=None)

    def flush(self) -> list[AlignedSet]:
        """Release every open set (at the end of a run)."""
        return self._release_through(max(self._open)) if self._open else []

    def _release_through(self, key: int) -> list[AlignedSet]:
        out = []
        for k in sorted(k for k in self._open if k <= key):
            aligned = self._open.pop(k)
            self._released[k] = aligned
            out.append(aligned)
        while len(self._released) > self.retain:
            self._released.popitem(last=False)
        return out
