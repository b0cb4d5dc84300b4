"""Generated three-phase test signals with their exact reference phasors (IEEE C37.118.1 tests).

A signal is phase-a angle ``2*pi*f0*t + phi(t)`` with ``phi`` the integral of
``2*pi*(f(t) - f0)`` over a piecewise-linear frequency profile (so a frequency
ramp has an exact quadratic phase and ROCOF is the profile's slope), plus
optional magnitude and phase steps, harmonics and noise.  Voltages a, b, c then
currents a, b, c (the current lags by the power-factor angle), the order every
gridbus PMU lists its phasors in.  Times are seconds from an origin that is a
whole UTC second, so the phase reference (a cosine at f0 locked to the UTC
second) is ``cos(2*pi*f0*t)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import FieldError
from .conditions import SIGNALS

SHIFT = np.array([0.0, -2 * math.pi / 3, 2 * math.pi / 3, 0.0, -2 * math.pi / 3, 2 * math.pi / 3])


@dataclass(frozen=True)
class FrequencyProfile:
    """Frequency (Hz) linear between breakpoints ``(t, f)``, constant before the first and after the last."""

    f0: float
    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        times = [t for t, _ in self.points]
        if not self.points or any(b <= a for a, b in zip(times, times[1:], strict=False)):
            raise FieldError(f"frequency profile needs increasing breakpoint times, got {times}")

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = np.array([p[0] for p in self.points])
        f = np.array([p[1] for p in self.points])
        # phase (rad, minus 2*pi*f0*t) accumulated at each breakpoint since the first: trapezoids are exact
        dphi = np.pi * (f[1:] + f[:-1] - 2 * self.f0) * np.diff(t)
        return t, f, np.concatenate([[0.0], np.cumsum(dphi)])

    def at(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(frequency Hz, ROCOF Hz/s, phase rad relative to f0) at times ``t``."""
        bt, bf, bphi = self._arrays()
        seg = np.clip(np.searchsorted(bt, t, side="right") - 1, 0, len(bt) - 1)
        slope = np.zeros(len(bt))
        slope[:-1] = np.diff(bf) / np.diff(bt)
        dt = t - bt[seg]
        rocof = np.where((t >= bt[0]) & (t < bt[-1]), slope[seg], 0.0)
        freq = bf[seg] + rocof * dt
        phase = bphi[seg] + 2 * np.pi * ((bf[seg] - self.f0) * dt + 0.5 * rocof * dt * dt)
        return freq, rocof, phase


@dataclass(frozen=True)
class TestSignal:
    """A three-phase voltage and current test signal and its exact reference."""

    __test__ = False  # not a pytest class

    f0: float
    profile: FrequencyProfile
    voltage: float = 120.0  # V RMS per phase
    current: float = 5.0  # A RMS
    current_lag: float = math.acos(0.95)  # rad
    phase0: float = 0.0  # rad, phase a at t = 0
    magnitude_step: tuple[float, float] | None = None  # (t, relative change), e.g. (1.0, 0.1)
    phase_step: tuple[float, float] | None = None  # (t, rad)
    harmonics: tuple[tuple[int, float], ...] = ()  # (order, fraction of the fundamental)
    noise: float = 0.0  # standard deviation, fraction of each channel's peak
    steps: tuple[float, ...] = field(default=())  # times where the reference jumps (for exclusions)

    def _amplitude(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(RMS magnitude per channel (6, n), extra phase (n,)) including the steps."""
        scale = np.ones_like(t)
        if self.magnitude_step is not None:
            scale = np.where(t >= self.magnitude_step[0], 1.0 + self.magnitude_step[1], 1.0)
        jump = np.zeros_like(t)
        if self.phase_step is not None:
            jump = np.where(t >= self.phase_step[0], self.phase_step[1], 0.0)
        rms = np.array([self.voltage] * 3 + [self.current] * 3)[:, None] * scale[None, :]
        return rms, jump

    def _angles(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        freq, rocof, phase = self.profile.at(t)
        rms, jump = self._amplitude(t)
        lag = np.array([0.0] * 3 + [self.current_lag] * 3)
        angle = (self.phase0 + phase + jump)[None, :] + (SHIFT - lag)[:, None]
        return rms, angle, np.stack([freq, rocof])

    def reference(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact (phasors (n, 6) complex RMS, frequency (n,), ROCOF (n,)) at times ``t``."""
        rms, angle, fr = self._angles(np.asarray(t, dtype=float))
        return (rms * np.exp(1j * angle)).T, fr[0], fr[1]

    def waveform(self, t: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Instantaneous values (6, n) at times ``t``: the samples an ADC would read."""
        rms, angle, _ = self._angles(t)
        theta = 2 * math.pi * self.f0 * t[None, :] + angle
        x: np.ndarray = math.sqrt(2) * rms * np.cos(theta)
        for order, fraction in self.harmonics:
            x += fraction * math.sqrt(2) * rms * np.cos(order * theta)
        if self.noise > 0:
            rng = rng or np.random.default_rng(0)
            x += self.noise * math.sqrt(2) * rms * rng.standard_normal(x.shape)
        return x


def make_signal(kind: str, f0: float = 60.0, offset: float = 0.0, start: float = 1.0, **kw: Any) -> TestSignal:
    """A named test signal (``SIGNALS``): the C37.118.1 test conditions gridbus uses.

    steady: f0 + offset.  ramp: f0 - 2 Hz to f0 + 2 Hz at 1 Hz/s from ``start``.
    step, step-mag: +10 % magnitude at ``start``.  step-phase: +10 degrees at ``start``.  harmonics: 10 % of
    the 3rd and 5 % of the 5th.  noise: 0.1 % noise.  rocof: the seed's sequence, f0, +2 Hz over
    1 s from ``start``, hold 10 s, -2 Hz over 1 s.
    """
    f = f0 + offset
    flat = FrequencyProfile(f0, ((0.0, f),))
    if kind == "steady":
        return TestSignal(f0, flat, **kw)
    if kind == "ramp":
        return TestSignal(f0, FrequencyProfile(f0, ((start, f0 - 2.0), (start + 4.0, f0 + 2.0))), **kw)
    if kind in ("step", "step-mag"):
        return TestSignal(f0, flat, magnitude_step=(start, 0.1), steps=(start,), **kw)
    if kind == "step-phase":
        return TestSignal(f0, flat, phase_step=(start, math.radians(10.0)), steps=(start,), **kw)
    if kind == "harmonics":
        return TestSignal(f0, flat, harmonics=((3, 0.1), (5, 0.05)), **kw)
    if kind == "noise":
        return TestSignal(f0, flat, noise=0.001, **kw)
    if kind == "rocof":
        points = ((start, f0), (start + 1, f0 + 2), (start + 11, f0 + 2), (start + 12, f0))
        return TestSignal(f0, FrequencyProfile(f0, points), steps=tuple(p[0] for p in points), **kw)
    raise FieldError(f"unknown signal {kind!r}; known: {', '.join(SIGNALS)}")


def profile_breaks(signal: TestSignal) -> Sequence[float]:
    """Times at which the signal's reference changes abruptly (ramp ends, steps)."""
    points = signal.profile.points
    return sorted({*signal.steps, *(p[0] for p in points if len(points) > 1)})
