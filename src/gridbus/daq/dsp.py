"""Per-cycle signal processing of three-phase waveforms, for every object of an agent.

Every call gets the newest *one nominal cycle* of samples per object (a
sliding window, so values can be published faster than once a cycle) and
returns RMS voltages and currents, active and reactive power, the phasors
(one-cycle DFT at the nominal frequency) and the frequency from the rotation
of the positive-sequence voltage phasor since the previous call.

A DAQ agent runs this 100 times a second, each time just woken from sleep,
when every numpy call costs several µs whatever its size (measured on the
project's machine: the work was 10 % of the cost, the number of calls 90 %).
So the window is reduced in a few numpy calls for all objects (sums of
squares and of v·i products as row-by-column products, the DFT as one real
matrix product), and the few numbers per object that remain are worked out
in plain Python.
"""

from __future__ import annotations

import cmath
import math
from dataclasses import dataclass

import numpy as np

COLUMNS = ("Va", "Vb", "Vc", "Ia", "Ib", "Ic", "f", "P", "Q", "angle")
_A = cmath.exp(2j * math.pi / 3)  # the positive-sequence operator
_A2 = _A * _A
LIVE = 1.0  # V RMS of phase a below which an object has no frequency (a stopped machine): f = 0


@dataclass(frozen=True)
class Cycle:
    """What one call found, object by object (in the processor's order of objects).

    ``rows[k]`` holds object k's :data:`COLUMNS`: RMS phase voltages (V) and currents (A),
    frequency (Hz), active power (W), reactive power (var), and the angle (rad) of the
    phase-a voltage phasor; ``phasors[k]`` its six RMS phasors, V a, b, c then I a, b, c.
    """

    rows: list[list[float]]
    phasors: np.ndarray  # (objects, 6) complex

    def column(self, name: str) -> list[float]:
        """One of :data:`COLUMNS` for every object."""
        i = COLUMNS.index(name)
        return [row[i] for row in self.rows]


class CycleProcessor:
    def __init__(self, objects: int, sample_rate: float, nominal: float = 60.0) -> None:
        self.sample_rate = sample_rate
        self.nominal = nominal
        self.window = int(round(sample_rate / nominal))
        self.buffer = np.zeros((objects, 6, self.window))
        step = 2 * math.pi * np.arange(self.window) / self.window
        # the DFT kernel e^(-j step) sqrt(2) / window as two real columns: buffer @ dft holds each
        # channel's RMS phasor as (real, imaginary), which view as one complex number
        self.dft = np.stack([np.cos(step), -np.sin(step)], axis=1) * (math.sqrt(2) / self.window)
        self._previous: list[complex] = []  # the positive-sequence phasors of the last call
        self._samples_since = 0

    def push(self, block: np.ndarray) -> None:
        """Append a block (objects, 6, n) to the sliding one-cycle window."""
        n = block.shape[2]
        if n >= self.window:
            self.buffer[:] = block[:, :, -self.window :]
        else:
            self.buffer = np.concatenate([self.buffer[:, :, n:], block], axis=2)
        self._samples_since += n

    def compute(self) -> Cycle:
        """The quantities of the current window, for every object."""
        window = self.buffer
        rows_of = window[:, :, None, :]  # each channel's samples as a 1 x window matrix
        squares = rows_of @ window[:, :, :, None]  # (objects, 6, 1, 1): sum of x^2 per channel
        products = rows_of[:, :3] @ window[:, 3:, :, None]  # (objects, 3, 1, 1): sum of v.i per phase
        sums = np.concatenate((squares, products), axis=1).reshape(len(window), 9).tolist()
        phasors = (window @ self.dft).view(np.complex128)[:, :, 0]
        per_sample = 1 / self.window
        # a window dt later turns the phasor of an f0 signal by 2 pi f0 dt; the rest is f - f0
        dt = self._samples_since / self.sample_rate
        unturn = cmath.exp(-2j * math.pi * self.nominal * dt)
        per_turn = 1 / (2 * math.pi * dt) if dt else 0.0
        previous = self._previous if dt else []
        self._previous, self._samples_since = [], 0
        sqrt, phase = math.sqrt, cmath.phase
        rows = []
        for k, ((s0, s1, s2, s3, s4, s5, p0, p1, p2), (va, vb, vc, ia, ib, ic)) in enumerate(
            zip(sums, phasors.tolist(), strict=True)
        ):
            # positive sequence: its angle is free of the 2f ripple that off-nominal leakage puts
            # on each phase's one-cycle DFT
            positive = (va + _A * vb + _A2 * vc) / 3
            self._previous.append(positive)
            v_a = sqrt(s0 * per_sample)
            if v_a <= LIVE:
                f = 0.0
            elif k < len(previous):
                f = self.nominal + phase(positive * previous[k].conjugate() * unturn) * per_turn
            else:
                f = self.nominal  # a first call: no turn to go by yet
            reactive = (va * ia.conjugate() + vb * ib.conjugate() + vc * ic.conjugate()).imag
            rows.append(
                [
                    v_a,
                    sqrt(s1 * per_sample),
                    sqrt(s2 * per_sample),
                    sqrt(s3 * per_sample),
                    sqrt(s4 * per_sample),
                    sqrt(s5 * per_sample),
                    f,
                    (p0 + p1 + p2) * per_sample,
                    reactive,
                    phase(va),
                ]
            )
        return Cycle(rows, phasors)
