"""Synchrophasor estimation (IEEE C37.118.1 reference filters), vectorised over PMUs and frames.

A phasor at time ``tc`` is the windowed, demodulated sum

    X(tc) = sqrt(2) / sum(W) * sum_k x(tc + k/fs) W(k) exp(-j*2*pi*f0*(tc + k/fs))

so its angle is relative to a cosine at f0 locked to the UTC second.

* **P class** (protection, fast): the standard's reference filter, a triangle
  ``W(k) = 1 - 2|k|/(N+2)`` over two nominal cycles (``N = 2*(fs/f0 - 1)``).  Its
  zeros sit on every harmonic of f0, so harmonics vanish.
* **M class** (measurement, clean): the shape of the standard's reference M
  filter, a Hamming-windowed sinc low-pass with its cut-off ``Ffr = 0.2 * rate``
  (below the reporting Nyquist rate, so out-of-band signals do not alias) over
  about ``10 / rate`` seconds.

Frequency and ROCOF come from the positive-sequence voltage angle evaluated at
``tc - d``, ``tc`` and ``tc + d`` (first and second central differences, exact
for the quadratic phase of a frequency ramp).  Magnitudes are divided by the
filter's gain at the estimated frequency, as the standard allows, so an
off-nominal signal is not read low.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import FieldError

CLASSES = ("P", "M")
A = np.exp(2j * math.pi / 3)


@dataclass(frozen=True)
class Estimate:
    """Estimates for P PMUs x F frames: phasors (P, F, C) complex RMS, freq and rocof (P, F)."""

    phasors: np.ndarray
    freq: np.ndarray
    rocof: np.ndarray


class PhasorEstimator:
    """One filter (P or M class) for a sampling rate, nominal frequency and reporting rate."""

    def __init__(self, pmu_class: str = "P", f0: float = 60.0, fs: float = 2880.0, rate: float = 60.0) -> None:
        if pmu_class not in CLASSES:
            raise FieldError(f"PMU class must be P or M, got {pmu_class!r}")
        self.pmu_class, self.f0, self.fs, self.rate = pmu_class, f0, fs, rate
        per_cycle = fs / f0
        if abs(per_cycle - round(per_cycle)) > 1e-9 or per_cycle < 8:
            raise FieldError(f"sample rate {fs:g} must be a whole number >= 8 of samples per {f0:g} Hz cycle")
        if pmu_class == "P":
            n = 2 * (round(per_cycle) - 1)
            k = np.arange(-n // 2, n // 2 + 1)
            w = 1.0 - 2.0 * np.abs(k) / (n + 2)
            self.spacing = round(per_cycle / 2)  # d: half a cycle
        else:
            half = max(round(per_cycle), round(5.0 / rate * fs))
            k = np.arange(-half, half + 1)
            cutoff = 0.2 * rate
            w = np.sinc(2 * cutoff * k / fs) * np.hamming(len(k))
            self.spacing = round(per_cycle)
        self.k = k
        self.weights = w / w.sum()
        self.kernel = math.sqrt(2) * self.weights * np.exp(-2j * math.pi * f0 * k / fs)
        self._real_kernel = np.stack([self.kernel.real, self.kernel.imag], axis=1)  # (L, 2): real BLAS
        self.reach = int(k[-1]) + self.spacing  # samples needed on each side of a frame time

    def gain(self, deviation: np.ndarray) -> np.ndarray:
        """The filter's gain for a signal ``deviation`` Hz off nominal (1 at nominal)."""
        gain: np.ndarray = np.cos(2 * math.pi * np.multiply.outer(deviation, self.k) / self.fs) @ self.weights
        return gain

    def estimate(self, x: np.ndarray, t_first: float, frame_times: np.ndarray) -> Estimate:
        """Phasors, frequency and ROCOF at ``frame_times`` from samples ``x`` (P, C, n).

        The first sample is at ``t_first``; every frame needs :attr:`reach` samples
        on both sides (a frame time off the sample grid is rounded to the nearest sample).
        """
        centre = np.rint((np.asarray(frame_times) - t_first) * self.fs).astype(int)
        if len(centre) and (centre.min() < self.reach or centre.max() + self.reach >= x.shape[-1]):
            raise FieldError("sample block does not cover the estimator's window around every frame")
        d = self.spacing
        centres = np.concatenate([centre - d, centre, centre + d])  # (3F,)
        windows = x[..., centres[:, None] + self.k[None, :]]  # (P, C, 3F, L)
        t_c = t_first + centres / self.fs
        parts = windows @ self._real_kernel  # (P, C, 3F, 2)
        raw = (parts[..., 0] + 1j * parts[..., 1]) * np.exp(-2j * math.pi * self.f0 * t_c)  # (P, C, 3F)
        f = len(centre)
        before, now, after = raw[..., :f], raw[..., f : 2 * f], raw[..., 2 * f :]
        theta = [np.angle(positive_sequence(p[:, :3, :])) for p in (before, now, after)]
        dt = d / self.fs
        first = _wrap(theta[2] - theta[0])
        second = _wrap(theta[2] - theta[1]) - _wrap(theta[1] - theta[0])
        freq = self.f0 + first / (4 * math.pi * dt)
        rocof = second / (2 * math.pi * dt * dt)
        phasors = np.moveaxis(now, 1, 2) / self.gain(freq - self.f0)[..., None]
        return Estimate(phasors, freq, rocof)


def positive_sequence(phasors: np.ndarray) -> np.ndarray:
    """Positive-sequence component of phase a, b, c phasors on axis -2 (shape (..., 3, F))."""
    positive: np.ndarray = (phasors[..., 0, :] + A * phasors[..., 1, :] + A * A * phasors[..., 2, :]) / 3
    return positive


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + math.pi) % (2 * math.pi) - math.pi
