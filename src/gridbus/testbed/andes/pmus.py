"""PMUs of a phasor simulator: C37.118 frames straight from the solved positive sequence.

The lab's PMUs estimate phasors from waveforms (:class:`gridbus.pmu.testbed.TestbedPMUs`),
because the lab plant is quasi-static.  ANDES already solves phasors at every
step, with a bus frequency (``BusFreq``), so a frame is the simulator's value
at the frame's instant, through the PMU's sensor model (``PMU_n.magnitude``,
``PMU_n.angle``, ``PMU_n.freq``: noise and bias, in V, rad and Hz).  VB and VC
are VA shifted by ∓120° (a balanced network); the current channels read 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ...bus import Bus
from ...pmu.frames import FramePublisher
from ...timebase import TimeBase
from ..system import System

_SHIFT = np.exp(-2j * np.pi / 3)


class PhasorPMUs:
    """Every PMU of an ANDES testbed: one frame per PMU at each reporting instant."""

    def __init__(self, bus: Bus, system: System, clock: TimeBase, seed: int = 0) -> None:
        self.ids: Sequence[str] = list(system.pmus)
        self.clock = clock
        self.rate = float(system.rates.get("PMU", 30.0))
        self.publisher = FramePublisher(bus, self.ids, system.frequency, self.rate, station="andes")
        self.rng = np.random.default_rng(seed)
        fields = ("magnitude", "angle", "freq")
        models = [[system.sensor(p, name) for name in fields] for p in self.ids]
        self.noise = np.array([[m.noise for m in row] for row in models]).reshape(len(self.ids), 3)
        self.bias = np.array([[m.bias for m in row] for row in models]).reshape(len(self.ids), 3)
        self.next_frame = 0
        self.last_f: np.ndarray | None = None

    def publish(self, t: float, true: Mapping[str, Mapping[str, float]]) -> int:
        """Publish the frame of every reporting instant reached by simulated time ``t``."""
        if not self.ids or self.next_frame / self.rate > t + 1e-9:
            return 0
        frame_t = self.next_frame / self.rate
        while (self.next_frame + 1) / self.rate <= t + 1e-9:  # a late tick: only the newest frame
            self.next_frame += 1
            frame_t = self.next_frame / self.rate
        self.next_frame += 1
        values = np.array([[true[p]["V"], true[p]["angle"], true[p]["f"]] for p in self.ids]).reshape(len(self.ids), 3)
        values = values + self.bias + self.noise * self.rng.standard_normal(values.shape)
        va = values[:, 0] * np.exp(1j * values[:, 1])
        phasors = np.zeros((len(self.ids), 6), dtype=complex)
        phasors[:, 0], phasors[:, 1], phasors[:, 2] = va, va * _SHIFT, va / _SHIFT
        freq = values[:, 2]
        rocof = np.zeros_like(freq) if self.last_f is None else (freq - self.last_f) * self.rate
        self.last_f = freq
        live = np.array([true[p]["live"] > 0 for p in self.ids])
        self.publisher.publish(self.clock.stamp(frame_t), phasors, freq, rocof, ~live)
        return 1
