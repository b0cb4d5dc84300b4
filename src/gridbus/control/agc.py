"""Automatic generation control: bring the frequency back to nominal after a disturbance.

The governors' droop stops a frequency decline but leaves an offset
(a 40 MW loss on IEEE 14 holds it ~0.25 Hz low); secondary control removes it.
This AGC is the textbook single-area integral controller LTB's control module
runs: every ``period`` of simulated time it reads the machines' frequency from
the bus, computes the area control error ``ACE = β (f - f0)`` (W; no tie lines
in one area) and moves the total set-point by ``-Ki · ACE · period``, shared by
participation factors (by rating) among the running machines with a governor,
on top of the power references they had when it started.  Set-points go out
on ``Generator_Command`` ``P_ref``, exactly what the lab's controllers send.

Time is the testbed's: the period is measured in simulated seconds from the
samples' source timestamps (``Δstamp × speed``), so the loop behaves the
same at any ``--speed``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

from ..bus import Bus, Sample
from ..errors import FieldError

log = logging.getLogger(__name__)


@dataclass
class AgcSettings:
    """Tuning of the integral controller."""

    f0: float = 60.0  # Hz, the scheduled frequency
    bias: float = 150e6  # W/Hz, β: the area's frequency response (droop of its governors)
    gain: float = 0.15  # 1/s, Ki: how fast the ACE is integrated away
    period: float = 0.5  # simulated s between set-point updates
    deadband: float = 0.005  # Hz within which the ACE is taken as 0 (noise of the sensors)
    max_rate: float = 0.0  # W/s limit on the total set-point change (0 = none)


@dataclass
class AgcStatus:
    """What the AGC did: its last computation and counts."""

    t: float = 0.0  # simulated time of the last update
    f: float = math.nan  # Hz measured
    ace: float = 0.0  # W
    delta: float = 0.0  # W added to the base set-points in total
    commands: int = 0
    updates: int = 0
    base: dict[str, float] = field(default_factory=dict)  # W per participating machine


class AGC:
    """The controller, fed by bus samples; :meth:`poll` reads, decides and commands."""

    def __init__(self, bus: Bus, speed: float = 1.0, settings: AgcSettings | None = None) -> None:
        self.bus, self.speed = bus, speed
        self._stopping = False
        self.settings = settings or AgcSettings()
        self.status = AgcStatus()
        self.measurements = bus.reader("G")
        self.states = bus.reader("G", "State")
        self.f: dict[str, float] = {}
        self.rating: dict[str, float] = {}
        self.running: dict[str, bool] = {}
        self.first_stamp: float | None = None
        self.newest = -math.inf  # simulated s of the newest measurement
        self.next_update = 0.0
        self.refused: set[str] = set()  # units whose set-point the data model cannot carry

    def _sim(self, sample: Sample) -> float:
        if self.first_stamp is None:
            self.first_stamp = sample.source_time
        return (sample.source_time - self.first_stamp) * self.speed

    def ingest(self, samples: list[Sample]) -> None:
        for s in samples:
            if s.topic == "Generator_State":
                self.running[s.id] = s.status.name == "RUNNING"
                if s.id not in self.status.base and math.isfinite(s.P_ref_applied):
                    self.status.base[s.id] = float(s.P_ref_applied)
                    self.rating[s.id] = max(abs(float(s.P_ref_applied)), 1.0)
            else:
                self.f[s.id] = float(s.f)
                self.newest = max(self.newest, self._sim(s))

    def poll(self, timeout: float = 0.05) -> bool:
        """Read what arrived; update the set-points when a period of simulated time has passed."""
        self.ingest(self.states.take(0))
        self.ingest(self.measurements.take(timeout))
        if not self.due():
            return False
        self.update(self.newest)
        return True

    def due(self) -> bool:
        """Whether a period of simulated time has passed (stamps on a 1/30 s grid: a µs of slack)."""
        return self.newest + 1e-6 >= self.next_update and bool(self.status.base)

    def system_frequency(self) -> float:
        """Mean frequency of the running machines (Hz; NaN before any data)."""
        values = [f for g, f in self.f.items() if self.running.get(g, True) and f > 1.0]
        return sum(values) / len(values) if values else math.nan

    def update(self, t: float) -> None:
        """One AGC cycle at simulated time ``t``: ACE, integral, set-points."""
        cfg, st = self.settings, self.status
        f = self.system_frequency()
        if math.isnan(f):
            return
        dt = cfg.period if st.updates else 0.0
        error = f - cfg.f0
        st.ace = cfg.bias * (0.0 if abs(error) < cfg.deadband else error)
        step = -cfg.gain * st.ace * dt
        if cfg.max_rate > 0:
            step = max(-cfg.max_rate * dt, min(cfg.max_rate * dt, step))
        st.delta += step
        st.t, st.f = t, f
        st.updates += 1
        self.next_update = t + cfg.period
        if step == 0.0:
            return  # inside the deadband: the set-points stand, nothing to send
        units = [g for g in st.base if self.running.get(g, False) and g not in self.refused]
        total = sum(self.rating[g] for g in units)
        for g in units:
            share = self.rating[g] / total
            try:
                self.bus.command(g, P_ref=st.base[g] + share * st.delta)
            except FieldError as exc:  # beyond what Generator_Command can carry: leave the unit out
                log.warning("agc: %s leaves the AGC: %s", g, exc)
                self.refused.add(g)
                continue
            st.commands += 1
        log.debug("agc t=%.2f f=%.4f ACE=%.0f W delta=%.0f W", t, f, st.ace, st.delta)

    def stop(self) -> None:
        """Ask :meth:`run` to end after this poll (a flag: safe from any thread)."""
        self._stopping = True

    def run(self, duration: float | None = None) -> AgcStatus:
        """Run until ``duration`` wall seconds have passed (forever if None)."""
        end = math.inf if duration is None else time.monotonic() + duration
        while not self._stopping and time.monotonic() < end:
            self.poll()
        return self.status
