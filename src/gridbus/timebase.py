"""The testbed's time base, shared by the simulator and the controllers.

Simulated time ``t`` travels on the bus as a source timestamp ``epoch + t / speed``.
The testbed writes those stamps (:class:`SimClock`), controllers read ``t`` back from
them (:class:`gridbus.control.clock.DataClock`).  The conversion lives here, below
both, so that a controller never imports the simulator to learn what time it is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    """What controllers need of a clock: a :class:`~gridbus.control.clock.DataClock`, or the
    testbed's wall-clock schedule (:class:`SimClock`) where nothing can be late."""

    epoch: float
    speed: float

    def now(self) -> float: ...
    def since(self, sim_time: float) -> float: ...
    def stamp(self, sim_time: float) -> float: ...
    def sim_time(self, stamp: float) -> float: ...


@dataclass(eq=False)  # identity, as before, for DataClock (a clock with state)
class TimeBase:
    """Simulated time ``t`` is stamped ``epoch + t / speed`` (UTC seconds)."""

    epoch: float
    speed: float = 1.0

    def stamp(self, sim_time: float) -> float:
        """The source timestamp (UTC s) that carries simulated time ``sim_time``."""
        return self.epoch + sim_time / self.speed

    def sim_time(self, stamp: float) -> float:
        """Simulated time carried by a source timestamp (the inverse of :meth:`stamp`)."""
        return (stamp - self.epoch) * self.speed


@dataclass
class SimClock(TimeBase):
    """The testbed's time base with the wall clock as its schedule.

    :meth:`now` is the wall-clock schedule (``(wall - epoch) * speed``): where
    simulated time would be if nothing were ever late.  The testbed paces
    itself by it; readers of its data should use the stamps instead
    (:class:`gridbus.control.clock.DataClock`).
    """

    def now(self) -> float:
        return (time.time() - self.epoch) * self.speed

    def since(self, sim_time: float) -> float:
        """Simulated seconds from ``sim_time`` to now."""
        return self.now() - sim_time

    def wall(self, sim_time: float) -> float:
        """The wall-clock instant (UTC s) the schedule reaches ``sim_time``: its stamp."""
        return self.stamp(sim_time)

    def sleep(self, sim_seconds: float) -> None:
        time.sleep(max(0.0, sim_seconds / self.speed))

    def sleep_until(self, sim_time: float) -> None:
        time.sleep(max(0.0, self.wall(sim_time) - time.time()))
