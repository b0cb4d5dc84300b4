"""Per-cycle signal processing of three-phase waveforms, vectorized over objects.

Every call gets the newest *one nominal cycle* of samples per object (a
sliding window, so values can be published faster than once a cycle) and
returns RMS voltages and currents, active and reactive power, the voltage
phasors (one-cycle DFT at the nominal frequency) and the frequency from the
rotation of the positive-sequence voltage phasor since the previous call.
"""

from __future__ import annotations

import math

import numpy as np


class CycleProcessor:
    def __init__(self, objects: int, sample_rate: float, nominal: float = 60.0) -> None:
        self.sample_rate = sample_rate
        self.nominal = nominal
        self.window = int(round(sample_rate / nominal))
        self.buffer = np.zeros((objects, 6, self.window))
        n = np.arange(self.window)
        self.kernel = np.exp(-2j * math.pi * n / self.window) * math.sqrt(2) / self.window
        self._previous: np.ndarray | None = None
        self._samples_since = 0

    def push(self, block: np.ndarray) -> None:
        """Append a block (objects, 6, n) to the sliding one-cycle window."""
        n = block.shape[2]
        if n >= self.window:
            self.buffer[:] = block[:, :, -self.window :]
        else:
            self.buffer = np.concatenate([self.buffer[:, :, n:], block], axis=2)
        self._samples_since += n

    def compute(self) -> dict[str, np.ndarray]:
        """The quantities of the current window, one array entry per object."""
        v, i = self.buffer[:, :3, :], self.buffer[:, 3:, :]
        rms = np.sqrt(np.mean(self.buffer**2, axis=2))  # (objects, 6)
        phasors = self.buffer @ self.kernel  # (objects, 6), RMS phasors
        P = np.sum(np.mean(v * i, axis=2), axis=1)
        S = np.sum(phasors[:, :3] * np.conj(phasors[:, 3:]), axis=1)
        # positive sequence: its angle is free of the 2f ripple that off-nominal leakage puts
        # on each phase's one-cycle DFT
        a = np.exp(2j * math.pi / 3)
        positive = (phasors[:, 0] + a * phasors[:, 1] + a * a * phasors[:, 2]) / 3
        angle = np.angle(positive)
        # a window dt later turns the phasor of an f0 signal by 2*pi*f0*dt; the rest is f - f0
        dt = self._samples_since / self.sample_rate
        if self._previous is None or dt == 0:
            f = np.full(len(angle), self.nominal)
        else:
            turn = angle - self._previous - 2 * math.pi * self.nominal * dt
            turn = (turn + math.pi) % (2 * math.pi) - math.pi
            f = self.nominal + turn / (2 * math.pi * dt)
        live = rms[:, 0] > 1.0
        f = np.where(live, f, 0.0)
        self._previous, self._samples_since = angle, 0
        return {
            "V": rms[:, :3],
            "I": rms[:, 3:],
            "P": P,
            "Q": S.imag,
            "f": f,
            "V_phasor": phasors[:, :3],
            "I_phasor": phasors[:, 3:],
        }
