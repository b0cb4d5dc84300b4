"""``gridbus ems``: the control centre's state estimator, on the bus.

It reads what SCADA and the PMUs publish (Busbar, Line, Generator, Load
measurements, PMU frames) and the breakers' states (the topology), keeps the
newest value of each, and every ``period`` estimates the network state by
weighted least squares (:mod:`.wls`).  The estimate, every residual and the
bad-data verdict go out on ``Estimate_State`` (``SE_<name>``), stamped with the
newest measurement's source time, so a controller or an operator display can
use the EMS's view instead of raw measurements — LTB's EMS → control path.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np

from ..bus import Bus
from .snapshot import Snapshot
from .wls import Estimate, estimate_clean

log = logging.getLogger(__name__)
FRAMES_KEPT = 30  # PMU reporting instants kept to find one all PMUs have reported


class EMS:
    """The estimator process: readers, the newest values, one estimate per period."""

    def __init__(self, bus: Bus, snapshot: Snapshot, name: str = "ems", period: float = 1.0) -> None:
        self.bus, self.snapshot, self.period = bus, snapshot, period
        self._stopping = False
        self.readers = [bus.reader(p) for p in ("Bus", "TL", "G", "L")]
        self.frames = bus.reader("PMU")
        self.breakers = bus.reader("CB", "State")
        self.writer = bus.writer(f"SE_{name}", "State")
        self.values: dict[str, dict[str, float]] = {}
        self.pmu_frames: dict[float, dict[str, dict[str, float]]] = {}
        self.open_lines: set[str] = set()
        self.stamp = 0.0
        self.next_run = 0.0
        self.estimates = 0
        self.last: Estimate | None = None
        # every bus, line, machine and load must have reported once before the first estimate
        self.needed = {*snapshot.ids.bus, *snapshot.ids.line, *snapshot.ids.gen, *snapshot.ids.load}

    def ingest(self) -> None:
        for reader in self.readers:
            for s in reader.take(0):
                self.values[s.id] = s.fields()
                self.stamp = max(self.stamp, s.source_time)
        for s in self.frames.take(0):
            if s.stat & 0x8000 == 0 and s.magnitude:
                frame = self.pmu_frames.setdefault(round(s.source_time, 6), {})
                frame[s.id] = {"V": float(s.magnitude[0]), "angle": float(s.angle[0])}
        for stamp in sorted(self.pmu_frames)[:-FRAMES_KEPT]:
            del self.pmu_frames[stamp]
        for s in self.breakers.take(0):
            element = self.snapshot.ids.breaker.get(s.id, ("", "", ""))[2]
            if element in self.snapshot.ids.line:
                (self.open_lines.add if s.status.name == "OPEN" else self.open_lines.discard)(element)

    def _pmu_values(self) -> dict[str, dict[str, float]] | None:
        """The newest frame instant every PMU has reported."""
        wanted = set(self.snapshot.pmus)
        for stamp in sorted(self.pmu_frames, reverse=True):
            if wanted <= set(self.pmu_frames[stamp]):
                return self.pmu_frames[stamp]
        return None if wanted else {}

    def poll(self, timeout: float = 0.05) -> bool:
        """Read the bus; estimate and publish when a period has passed and every value is there."""
        self.ingest()
        if time.monotonic() < self.next_run:
            time.sleep(timeout)
            return False
        pmus = self._pmu_values()
        if pmus is None or not self.needed <= set(self.values):
            time.sleep(timeout)
            return False
        self.next_run = time.monotonic() + self.period
        self.run_once({**self.values, **pmus})
        return True

    def run_once(self, values: dict[str, Any]) -> Estimate:
        snap = self.snapshot
        model = snap.model(self.open_lines)
        result = estimate_clean(model, snap.vector(values), snap.sigma, snap.flat_start(model, values))
        self.last = result
        self.estimates += 1
        self.writer.write(**self.fields(result), timestamp=self.stamp or time.time())
        if result.bad is not None:
            log.warning("ems: bad data: %s (|r_N| = %.1f), left out", snap.layout.names[result.bad], result.largest)
        return result

    def fields(self, result: Estimate) -> dict[str, Any]:
        """The ``Estimate_State`` sample of one estimate (SI units)."""
        snap = self.snapshot
        order = snap.bus_ids()
        positions = [snap.bus_pos[b] for b in order]
        return {
            "reference": order[snap.reference] if snap.reference < len(order) else "",
            "buses": order,
            "V": (np.abs(result.V[positions]) * snap.vbase[positions]).tolist(),
            "angle": np.angle(result.V[positions]).tolist(),
            "converged": result.converged,
            "iterations": result.iterations,
            "dof": result.dof,
            "objective": result.objective,
            "chi2_limit": result.chi2_limit,
            "bad_data": result.bad is not None,
            "bad_measurement": snap.layout.names[result.bad] if result.bad is not None else "",
            "largest_normalized_residual": result.largest,
            "measurements": list(snap.layout.names),
            "residuals": (result.residuals * snap.scale).tolist(),
            "normalized": result.normalized.tolist(),
        }

    def stop(self) -> None:
        """Ask :meth:`run` to end after this poll (a flag: safe from any thread)."""
        self._stopping = True

    def run(self, duration: float | None = None) -> int:
        """Estimate until ``duration`` wall seconds have passed (forever if None); the count."""
        end = math.inf if duration is None else time.monotonic() + duration
        while not self._stopping and time.monotonic() < end:
            self.poll()
        return self.estimates
