"""The synchronizer (Figure 14): match frequency, voltage and phase, then close.

It compares the incoming machine's voltage phasor (``G_x`` measurement: f, Va,
angle) with the grid side of its breaker (a synchrophasor ``PMU_x`` on that
bus: its phase-A voltage phasor, first in every gridbus PMU's phasor list, and
its frequency), locks the machine's phase onto the grid's by trimming its frequency
reference, and closes the breaker only when all three differences are inside
the limits (with a margin for noise and latency) — projecting the phase forward over the age of the data and the
breaker's closing time.  It gives up, with the reason, after ``timeout``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..bus import Bus
from ..phasor import advance, wrap
from .clock import Clock
from .statemachine import StateMachine
from .view import GridView

VA = 0  # gridbus PMUs list their phasors VA, VB, VC, IA, IB, IC (gridbus.pmu.frames.PHASOR_NAMES)


@dataclass
class SyncLimits:
    df: float = 0.1  # Hz
    dV: float = 3.0  # V
    dphi: float = 10.0  # degrees
    timeout: float = 60.0  # s
    closing_time: float = 0.05  # s, breaker operating time the phase is projected over
    gain: float = 0.15  # Hz of frequency trim per radian of phase error
    max_trim: float = 0.15  # Hz
    margin: float = 0.5  # close only inside this fraction of the limits (noise, latency)


class Synchronizer(StateMachine):
    def __init__(
        self,
        bus: Bus,
        clock: Clock,
        generator: str,
        breaker: str,
        reference: str,
        limits: SyncLimits | None = None,
        nominal: float = 60.0,
    ) -> None:
        super().__init__(bus, f"sync-{generator.replace('_', '')}", clock)
        self.generator, self.breaker, self.reference = generator, breaker, reference
        self.limits = limits or SyncLimits()
        self.nominal = nominal
        self.closure: dict[str, float] | None = None
        self._sent = (math.nan, math.nan)
        self._sent_at = -math.inf

    def start(self) -> None:
        self.go("MATCHING", f"synchronizing {self.generator} to {self.reference}")

    def differences(self, view: GridView) -> tuple[float, float, float]:
        """(df Hz, dV V, dphi rad) of machine minus grid, projected to the closing instant."""
        gen, ref = view.sample(self.generator), view.sample(self.reference)
        now = self.clock.now() + self.limits.closing_time
        gen_angle = advance(gen.angle, gen.f, self.nominal, now - view.sim_time(gen))
        ref_angle = advance(ref.angle[VA], ref.freq, self.nominal, now - view.sim_time(ref))
        return gen.f - ref.freq, gen.Va - ref.magnitude[VA], wrap(gen_angle - ref_angle)

    def on_matching(self, view: GridView) -> None:
        df, dV, dphi = self.differences(view)
        lim = self.limits
        k = lim.margin
        if abs(df) < k * lim.df and abs(dV) < k * lim.dV and abs(math.degrees(dphi)) < k * lim.dphi:
            self.closure = {"df": df, "dV": dV, "dphi": math.degrees(dphi), "t": self.clock.now()}
            self.command(self.breaker, status="CLOSED")
            self.go("CLOSING", f"in limits: df={df:+.3f} Hz dV={dV:+.2f} V dphi={math.degrees(dphi):+.1f} deg")
            return
        if self.elapsed() > lim.timeout:
            self.go(
                "FAULT",
                f"gave up after {lim.timeout:g} s: df={df:+.2f} Hz dV={dV:+.1f} V dphi={math.degrees(dphi):+.0f} deg",
                fault=True,
            )
            return
        grid = view.sample(self.reference)
        grid_f, grid_v = grid.freq, grid.magnitude[VA]
        target = (grid_f - float(max(-lim.max_trim, min(lim.max_trim, lim.gain * dphi))), grid_v)
        due = self.clock.now() - self._sent_at > 0.5
        if due or abs(target[0] - self._sent[0]) > 0.005 or abs(target[1] - self._sent[1]) > 0.5:
            self.command(self.generator, f_ref=target[0], V_ref=target[1])
            self._sent, self._sent_at = target, self.clock.now()

    def on_closing(self, view: GridView) -> None:
        assert self.closure is not None  # set on the way into CLOSING
        for sample in view.protections:
            if sample.id == self.breaker and view.sim_time(sample) >= self.closure["t"] - 0.5 and sample.trip:
                self.go("FAULT", f"closure refused by the plant: {sample.detail}", fault=True)
                return
        if view.status(self.breaker) == "CLOSED":
            self.go("DONE", f"{self.breaker} closed", ready=True)
        else:
            self.timed_out(5.0, f"{self.breaker} reported CLOSED")
