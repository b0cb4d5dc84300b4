"""Simulated time as the testbed's data tells it.

The testbed stamps every sample with the simulated instant it describes
(``epoch + t / speed``, see :mod:`gridbus.timebase`).  A
:class:`DataClock` reads ``t`` back from those stamps: its :meth:`~DataClock.now`
is the newest simulated instant any measurement has reported.  When the
testbed is starved of CPU, its data comes slower and simulated time slows for
every controller reading it — nothing jumps, and no controller mistakes a late
testbed for stale data.  Only two questions need the wall clock, and they
are asked explicitly: how long has no data come at all (:meth:`~DataClock.silent_for`),
and how long has the clock been waiting for its first sample.
"""

from __future__ import annotations

import logging
import math
import time

from ..bus import Sample
from ..timebase import Clock as Clock  # controllers' clock protocol, importable from here too
from ..timebase import TimeBase

log = logging.getLogger("gridbus.control.clock")

# The testbed never runs faster than twice its speed (it does at most two loops' worth of steps
# per loop), so data that claims more, plus a wall second of slack, is on another time base.
MAX_CATCH_UP = 2.0
SLACK = 1.0


class DataClock(TimeBase):
    """Simulated time = the newest source time seen in the testbed's measurements.

    It is fed by :meth:`observe` (:class:`~gridbus.control.view.GridView` does
    that for every sample it ingests).  Only measurements advance it: they
    are the testbed's, while other topics (a controller's own
    ``Controller_State``) may come from processes on another clock.
    """

    def __init__(self, epoch: float, speed: float = 1.0) -> None:
        super().__init__(epoch, speed)
        self.first: float | None = None  # simulated time of the first measurement seen
        self._now = -math.inf
        self._advanced_at = time.monotonic()  # wall time (monotonic) of the last advance
        self.foreign: dict[str, int] = {}  # object id -> samples ignored as on another time base

    # -- fed by the data ------------------------------------------------------------------
    def observe(self, sample: Sample) -> bool:
        """Advance to ``sample``'s simulated time if it is a newer measurement.

        False when the sample is on another time base (far ahead of what the testbed can
        have computed): then it should not be used at all.
        """
        if not sample.topic.endswith("_Measurement"):
            return True
        t = self.sim_time(sample.source_time)
        if t > self._now:
            if self.first is not None and t - self._now > self._max_advance():
                self._ignore(sample, t)
                return False
            self._now = t
            self._advanced_at = time.monotonic()
            if self.first is None:
                self.first = t
        return True

    def _max_advance(self) -> float:
        """The most simulated time the testbed can have computed since the clock last advanced."""
        return self.speed * (MAX_CATCH_UP * (time.monotonic() - self._advanced_at) + SLACK)

    def _ignore(self, sample: Sample, t: float) -> None:
        """A sample far ahead of what the testbed can compute: another writer, another clock."""
        count = self.foreign.get(sample.id, 0)
        self.foreign[sample.id] = count + 1
        if count == 0:
            log.warning(
                "%s's source time is %.1f simulated s ahead of the testbed's data; ignored for "
                "the clock (another writer with another time base on this domain and partition?)",
                sample.id,
                t - self._now,
            )

    # -- read by controllers -------------------------------------------------------------
    def now(self) -> float:
        """The newest simulated time reported (0 before any measurement)."""
        return self._now if self.first is not None else 0.0

    @property
    def started(self) -> bool:
        """Whether any measurement has arrived yet."""
        return self.first is not None

    def since(self, sim_time: float) -> float:
        """Simulated seconds from ``sim_time`` to now, counted from the first measurement at the
        earliest (a stage entered before data flowed has not waited while the testbed was away)."""
        if self.first is None:
            return 0.0
        return self._now - max(sim_time, self.first)

    def silent_for(self) -> float:
        """Wall seconds since simulated time last advanced (since creation, before any data)."""
        return time.monotonic() - self._advanced_at
