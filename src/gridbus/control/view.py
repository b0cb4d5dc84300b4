"""What a controller knows of the plant: the newest sample of each object, and its age.

Ages are simulated seconds on the data's own clock (a :class:`~.clock.DataClock`
fed by every sample ingested): a measurement is stale when the *rest* of the
testbed's data has moved on without it.  A testbed that is merely slow (starved
of CPU) slows the clock with it and makes nothing stale; a testbed that stops
altogether stops the clock, which only the wall clock can notice — after
``silence`` wall seconds every measurement counts as stale, with that reason.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

from ..bus import Bus, Reader, Sample
from .clock import Clock


class StaleMeasurement(Exception):
    """A value a controller needs is missing or older than it may act on."""


class Pending(Exception):
    """A value has not arrived yet, but discovery may still be under way: try again."""


class GridView:
    """Newest measurement and state per object, fed by :meth:`ingest` or its own readers.

    ``stale_after`` is in simulated seconds: a value older than that (or one
    never received) raises :class:`StaleMeasurement` instead of being used.
    ``silence`` is in wall seconds: how long the testbed may send nothing at all
    before its data counts as gone (it also bounds the wait for a first sample,
    while discovery is under way).  With a plain wall-clock schedule
    (:class:`~gridbus.timebase.SimClock`) ages are wall time x speed since
    arrival, as before: fine for a testbed that keeps up, wrong for a starved one.
    """

    def __init__(self, clock: Clock, stale_after: float = 2.0, silence: float = 2.0, wall_jitter: float = 0.0) -> None:
        self.clock = clock
        self.stale_after = stale_after
        self.silence = silence
        # wall seconds of delivery jitter that are scheduling, not staleness: on a shared machine at
        # speed K, one object's samples may arrive late by a few hundred ms of wall time (K times
        # that in simulated time) while the others already moved the clock on
        self.wall_jitter = wall_jitter
        self.latest: dict[tuple[str, str], Sample] = {}
        self.protections: list[Sample] = []
        self._readers: list[Reader] = []
        self._created = time.monotonic()
        self._observe = getattr(clock, "observe", None)
        self.gone: dict[tuple[str, str], str] = {}  # (object, role) -> why its writers left

    def attach(
        self, bus: Bus, measured: Iterable[str] = ("G", "PMU", "Bus", "L"), stateful: Iterable[str] = ("G", "CB")
    ) -> GridView:
        """Read the given object types from ``bus`` (the recorder feeds :meth:`ingest` instead)."""
        # the DDS deadline (wall time) a reader requests must not be shorter than the writers offer
        # (their publishing period); the age check in sample() is the finer, simulated-time test
        deadline = max(0.25, self.stale_after / self.clock.speed)
        self._readers += [bus.reader(p, "Measurement", deadline=deadline) for p in measured]
        self._readers += [bus.reader(p, "State") for p in stateful]
        self._readers.append(bus.reader("CB", "Protection"))
        return self

    def update(self) -> list[Sample]:
        samples = [s for r in self._readers for s in r.take(0)]
        for sample in samples:
            self.ingest(sample)
        for reader in self._readers:
            self.collect_gone(reader)
        return samples

    def ingest(self, sample: Sample) -> None:
        if self._observe is not None and not self._observe(sample):
            return  # on another time base: not the testbed's
        role = sample.topic.rsplit("_", 1)[1]
        if role == "Protection":
            self.protections.append(sample)
        self.latest[(sample.id, role)] = sample
        self.gone.pop((sample.id, role), None)

    def collect_gone(self, reader: Reader) -> None:
        """Note the objects whose writers left, as ``reader`` learned while taking.

        Uses ``Reader.gone()`` (issue 10 item 5, bus.py) where the bus has it; without it,
        a testbed that left is noticed by its silence only (:meth:`silent`).
        """
        gone = getattr(reader, "gone", None)
        if not callable(gone):
            return
        for event in gone():
            role = event.topic.rsplit("_", 1)[1]
            self.gone[(event.id, role)] = event.reason

    # -- reading, with staleness ----------------------------------------------------------
    def age(self, object_id: str, role: str = "Measurement") -> float:
        """Simulated seconds from ``object_id``'s newest sample to now (inf: never received)."""
        sample = self.latest.get((object_id, role))
        if sample is None:
            return math.inf
        if self._observe is None:  # wall-clock schedule: time since it arrived
            return (time.time() - sample.reception_time) * self.clock.speed
        return self.clock.now() - self.sim_time(sample)

    def silent(self) -> str | None:
        """Why the testbed's data as a whole cannot be trusted any more (it stopped), or None.

        A testbed whose writers left is reported at once, per object, as "testbed gone"
        (:meth:`collect_gone`); one that stops without leaving (frozen, or killed before its
        DDS lease expires) only by this silence, after ``silence`` wall seconds.
        """
        silent_for = getattr(self.clock, "silent_for", None)
        if silent_for is None or not getattr(self.clock, "started", False):
            return None
        quiet = silent_for()
        if quiet > self.silence:
            return f"no data from the testbed for {quiet:.1f} s (wall; limit {self.silence:g} s): stalled or gone"
        return None

    def sample(self, object_id: str, role: str = "Measurement") -> Sample:
        sample = self.latest.get((object_id, role))
        if sample is None:
            # discovery takes a moment: a missing value is only missing after the grace period
            if time.monotonic() - self._created < max(self.silence, self.stale_after / self.clock.speed):
                raise Pending(object_id)
            raise StaleMeasurement(f"no {role.lower()} received from {object_id}")
        if role == "Measurement":
            if (object_id, role) in self.gone:
                raise StaleMeasurement(f"{object_id} measurement: testbed gone ({self.gone[(object_id, role)]})")
            silent = self.silent()
            if silent is not None:
                raise StaleMeasurement(f"{object_id} measurement: {silent}")
            age, limit = self.age(object_id, role), self._limit()
            if age > limit:
                raise StaleMeasurement(
                    f"{object_id} measurement is {age:.1f} s old (limit {limit:g} s): deadline missed"
                )
        return sample

    def _limit(self) -> float:
        """The staleness limit; on a wall-clock schedule, never under a quarter second of wall
        time (there, scheduling jitter would pass for staleness)."""
        if self._observe is not None:
            return max(self.stale_after, self.wall_jitter * self.clock.speed)
        return max(self.stale_after, max(0.25, self.wall_jitter) * self.clock.speed)

    def value(self, object_id: str, field: str, role: str = "Measurement") -> Any:
        return getattr(self.sample(object_id, role).data, field)

    def status(self, object_id: str, field: str = "status") -> str | None:
        """A state field by name (enums as their names); None before any state arrived."""
        sample = self.latest.get((object_id, "State"))
        if sample is None:
            return None
        value = getattr(sample.data, field)
        status: str | None = getattr(value, "name", value)  # an IDL enum's name
        return status

    def sim_time(self, sample: Sample) -> float:
        """The simulated instant ``sample`` describes (its source timestamp, read back)."""
        return self.clock.sim_time(sample.source_time)
