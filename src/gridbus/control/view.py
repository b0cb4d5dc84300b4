"""What a controller knows of the plant: the newest sample of each object, and its age."""
from __future__ import annotations

import math
import time
from typing import Any, Iterable

from ..bus import Bus, Reader, Sample
from ..testbed.service import SimClock


class StaleMeasurement(Exception):
    """A value a controller needs is missing or older than it may act on."""


class Pending(Exception):
    """A value has not arrived yet, but discovery may still be under way: try again."""


class GridView:
    """Newest measurement and state per object, fed by :meth:`ingest` or its own readers.

    ``stale_after`` is in simulated seconds: a value older than that (or one
    never received) raises :class:`StaleMeasurement` instead of being used.
    """

    def __init__(self, clock: SimClock, stale_after: float = 2.0) -> None:
        self.clock = clock
        self.stale_after = stale_after
        self.latest: dict[tuple[str, str], Sample] = {}
        self.since = clock.now()
        self.protections: list[Sample] = []
        self._readers: list[Reader] = []

    def attach(self, bus: Bus, measured: Iterable[str] = ("G", "PMU", "Bus", "L"),
               stateful: Iterable[str] = ("G", "CB")) -> "GridView":
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
        return samples

    def ingest(self, sample: Sample) -> None:
        role = sample.topic.rsplit("_", 1)[1]
        if role == "Protection":
            self.protections.append(sample)
        self.latest[(sample.id, role)] = sample

    # -- reading, with staleness ----------------------------------------------------------
    def age(self, object_id: str, role: str = "Measurement") -> float:
        """Simulated seconds since ``object_id``'s newest sample was received (inf: never)."""
        sample = self.latest.get((object_id, role))
        if sample is None:
            return math.inf
        return (time.time() - sample.reception_time) * self.clock.speed

    def sample(self, object_id: str, role: str = "Measurement") -> Sample:
        sample = self.latest.get((object_id, role))
        if sample is None:
            # allow a second of wall time for discovery before calling a value missing
            if self.clock.now() - self.since < max(self.stale_after, self.clock.speed):
                raise Pending(object_id)
            raise StaleMeasurement(f"no {role.lower()} received from {object_id}")
        if role == "Measurement":
            age = self.age(object_id, role)
            # never stricter than a quarter second of wall time: scheduling jitter is not staleness
            if age > max(self.stale_after, 0.25 * self.clock.speed):
                raise StaleMeasurement(f"{object_id} measurement is {age:.1f} s old "
                                       f"(limit {self.stale_after:g} s): deadline missed")
        return sample

    def value(self, object_id: str, field: str, role: str = "Measurement") -> Any:
        return getattr(self.sample(object_id, role).data, field)

    def status(self, object_id: str, field: str = "status") -> str | None:
        """A state field by name (enums as their names); None before any state arrived."""
        sample = self.latest.get((object_id, "State"))
        if sample is None:
            return None
        value = getattr(sample.data, field)
        return getattr(value, "name", value)

    def sim_time(self, sample: Sample) -> float:
        return (sample.source_time - self.clock.epoch) * self.clock.speed
