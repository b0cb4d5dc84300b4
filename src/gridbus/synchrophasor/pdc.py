"""The phasor data concentrator: PMU frames aligned by measurement time, on the bus and as C37.118.

``Concentrator`` reads the chosen PMUs (see :class:`~.stream.PmuInput` for the window
rules), publishes each released set as ``PDC_Measurement`` (stamped with the set's
measurement time) and, every ``state_period`` seconds, ``PDC_State``: per PMU the latency
(arrival - measurement time, p50 and p99 of the last 1000 frames), the completeness
(frames on time / sets released, percent) and the received/late/missing counts.  With a
:class:`~.stream.StreamFeed` it also serves the sets as one multi-PMU stream;
``gridbus pmu gateway --serve`` is this without the bus output.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..stats import percentile
from .align import MISSING, ON_TIME, TICKS, AlignedSet
from .data import STAT_DATA_INVALID
from .stream import PmuInput, StreamFeed

if TYPE_CHECKING:
    from ..bus import Bus
    from ..sample import Sample

LATENCY_WINDOW = 1000


@dataclass
class PmuStats:
    """What the PDC saw of one PMU."""

    received: int = 0
    on_time: int = 0
    late: int = 0
    missing: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))


class Concentrator:
    """Aligns ``pmu_ids`` with a ``window`` (s); publishes sets as ``pdc_id`` and/or serves them."""

    def __init__(
        self,
        bus: Bus,
        pmu_ids: Sequence[str],
        window: float,
        *,
        pdc_id: str | None = "PDC_1",
        feed: StreamFeed | None = None,
        state_period: float = 1.0,
    ) -> None:
        self.input = PmuInput(bus, pmu_ids, window)
        self.window, self.feed, self.state_period = window, feed, state_period
        self.pdc_id = pdc_id
        self.sets = 0
        self.stats = {p: PmuStats() for p in pmu_ids}
        self._sets_writer = bus.writer(pdc_id, "Measurement") if pdc_id else None
        self._state_writer = bus.writer(pdc_id, "State") if pdc_id else None
        self._stop = threading.Event()
        self._state_at = time.monotonic()

    def stop(self) -> None:
        self._stop.set()

    def run(self, duration: float | None = None) -> None:
        end = None if duration is None else time.monotonic() + duration
        while not self._stop.is_set() and (end is None or time.monotonic() < end):
            self.step(0.05)
        for aligned in self.input.aligner.flush():
            self._release(aligned)
        self.publish_state()

    def step(self, timeout: float) -> None:
        """Handle what arrives within ``timeout`` seconds."""
        released, arrived, late = self.input.poll(timeout)
        if self.input.config_changed and self.feed is not None:
            self.input.config_changed = not self.feed.configure(self.input.configs)
        for sample in arrived:
            self._arrived(sample)
        for sample in late:
            self.stats[sample.id].late += 1
        for aligned in released:
            self._release(aligned)
        if time.monotonic() - self._state_at >= self.state_period:
            self.publish_state()

    def _arrived(self, sample: Sample) -> None:
        stats = self.stats[sample.id]
        stats.received += 1
        stats.latencies.append(sample.reception_time - self.input.measurement_time(sample))

    def _release(self, aligned: AlignedSet) -> None:
        if aligned.revision == 0:
            self.sets += 1
            for pid in self.input.pmu_ids:
                status = aligned.status(pid)
                stats = self.stats[pid]
                if status == ON_TIME:
                    stats.on_time += 1
                elif status == MISSING:
                    stats.missing += 1
        if self._sets_writer is not None:
            self._sets_writer.write(timestamp=aligned.time, **self.set_fields(aligned))
        if self.feed is not None:
            self.feed.send(aligned)

    def set_fields(self, aligned: AlignedSet) -> dict[str, Any]:
        """The fields of a PDC_Measurement sample of one set."""
        soc, frac = divmod(aligned.key, TICKS)
        out: dict[str, Any] = {
            "soc": soc, "fracsec": frac, "time_base": TICKS, "pmu_ids": self.input.pmu_ids,
            "arrival": [], "stat": [], "phasor_count": [], "magnitude": [], "angle": [], "freq": [], "rocof": [],
        }  # fmt: skip
        for pid in self.input.pmu_ids:
            got = aligned.frames.get(pid)
            out["arrival"].append(aligned.status(pid))
            if got is None:
                cfg = self.input.configs.get(pid)
                n = len(cfg["phasor_names"]) if cfg else 0
                out["stat"].append(STAT_DATA_INVALID)
                out["phasor_count"].append(n)
                out["magnitude"] += [math.nan] * n
                out["angle"] += [math.nan] * n
                out["freq"].append(math.nan)
                out["rocof"].append(math.nan)
            else:
                sample = got.item
                out["stat"].append(sample.stat)
                out["phasor_count"].append(len(sample.magnitude))
                out["magnitude"] += list(sample.magnitude)
                out["angle"] += list(sample.angle)
                out["freq"].append(sample.freq)
                out["rocof"].append(sample.rocof)
        return out

    def state_fields(self) -> dict[str, Any]:
        """The fields of a PDC_State sample: per-PMU latency, completeness and counts."""
        ids = self.input.pmu_ids
        stats = [self.stats[p] for p in ids]

        def pct(s: PmuStats, q: float) -> float:
            value = percentile(s.latencies, q)
            return math.nan if value is None else value

        return {
            "window": self.window,
            "pmu_ids": ids,
            "latency_p50": [pct(s, 50) for s in stats],
            "latency_p99": [pct(s, 99) for s in stats],
            "completeness": [100.0 * s.on_time / self.sets if self.sets else 0.0 for s in stats],
            "received": [s.received for s in stats],
            "late": [s.late for s in stats],
            "missing": [s.missing for s in stats],
        }

    def publish_state(self) -> None:
        self._state_at = time.monotonic()
        if self._state_writer is not None:
            self._state_writer.write(**self.state_fields())

    def close(self) -> None:
        self.input.close()
