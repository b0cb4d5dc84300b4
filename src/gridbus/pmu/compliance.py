"""Compliance metrics of IEEE C37.118.1: TVE, FE, RFE, and step response, against an exact reference.

The core works on a :class:`Series` of frames from any source (a virtual PMU,
a real one read through the gateway, a recording): measurement time, phasors,
frequency and ROCOF, and on a reference, a function giving the exact phasors,
frequency and ROCOF at any time (:meth:`gridbus.pmu.signals.TestSignal.reference`).

* **TVE** = |X_measured - X_ref| / |X_ref| (%), per frame the worst phasor;
* **FE** = |f_measured - f_ref| (Hz); **RFE** = |ROCOF_measured - ROCOF_ref| (Hz/s);
* steps: **response time** (how long TVE, FE, RFE stay above their limits around the step),
  **delay** (when the measured value crosses half the step, minus the step time) and
  **overshoot** (% of the step), from equivalent-time sampling (the step moved by a fraction
  of a frame between runs, as the standard prescribes).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import FieldError
from .conditions import TESTS as TESTS  # re-exported: suite and bus_test import it from here

Reference = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Series:
    """Frames of one PMU: times (F,) UTC or relative s, phasors (F, C) complex RMS, freq, rocof (F,)."""

    times: np.ndarray
    phasors: np.ndarray
    freq: np.ndarray
    rocof: np.ndarray

    @classmethod
    def from_frames(cls, frames: Iterable[tuple[float, Sequence[complex], float, float]]) -> Series:
        """From ``(time, phasors, freq, rocof)`` tuples, e.g. decoded C37.118 frames."""
        rows = list(frames)
        if not rows:
            raise FieldError("no frames to evaluate")
        return cls(
            np.array([r[0] for r in rows], dtype=float),
            np.array([list(r[1]) for r in rows], dtype=complex),
            np.array([r[2] for r in rows], dtype=float),
            np.array([r[3] for r in rows], dtype=float),
        )

    def where(self, keep: np.ndarray) -> Series:
        return Series(self.times[keep], self.phasors[keep], self.freq[keep], self.rocof[keep])


@dataclass(frozen=True)
class Check:
    """One line of a compliance table."""

    name: str
    measured: float
    limit: float
    unit: str

    @property
    def passed(self) -> bool:
        return math.isfinite(self.measured) and self.measured <= self.limit

    def row(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "measured": round(self.measured, 6),
            "limit": self.limit,
            "unit": self.unit,
            "pass": self.passed,
        }


@dataclass(frozen=True)
class Limits:
    """Error limits of one test condition (C37.118.1-2011 with its 2014 amendment, P or M class)."""

    tve: float = 1.0  # %
    fe: float = 0.005  # Hz
    rfe: float = 0.01  # Hz/s
    exclusion: float = 0.0  # s excluded after each abrupt change of the reference (ramp ends)


def limits_for(test: str, pmu_class: str, rate: float) -> Limits:
    """The limits gridbus checks: steady state TVE 1 %, FE 0.005 Hz, RFE 0.01 Hz/s; frequency
    ramps (and the ROCOF sequence, made of ramps) FE 0.01 Hz, RFE 0.1 Hz/s (P) or 0.2 Hz/s (M),
    with an exclusion interval of 2/rate (P) or 7/rate (M) after each ramp start and end."""
    if test in ("ramp", "rocof"):
        p = pmu_class == "P"
        return Limits(1.0, 0.01, 0.1 if p else 0.2, (2.0 if p else 7.0) / rate)
    return Limits()


def errors(series: Series, reference: Reference) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: TVE (%, worst phasor), FE (Hz), RFE (Hz/s) against the exact reference."""
    ref, f, r = reference(series.times)
    tve = 100 * np.max(np.abs(series.phasors - ref) / np.abs(ref), axis=1)
    return tve, np.abs(series.freq - f), np.abs(series.rocof - r)


def excluded(times: np.ndarray, breaks: Sequence[float], interval: float) -> np.ndarray:
    """Frames within ``interval`` of an abrupt change of the reference (either side)."""
    out = np.zeros(len(times), dtype=bool)
    for b in breaks:
        out |= np.abs(times - b) <= interval
    return out


def steady_checks(series: Series, reference: Reference, limits: Limits, breaks: Sequence[float] = ()) -> list[Check]:
    """Maximum TVE, FE and RFE over the frames outside the exclusion intervals."""
    keep = ~excluded(series.times, breaks, limits.exclusion)
    if not keep.any():
        raise FieldError("every frame falls in an exclusion interval: nothing to evaluate")
    tve, fe, rfe = errors(series.where(keep), reference)
    return [
        Check("max TVE", float(tve.max()), limits.tve, "%"),
        Check("max FE", float(fe.max()), limits.fe, "Hz"),
        Check("max RFE", float(rfe.max()), limits.rfe, "Hz/s"),
    ]


@dataclass(frozen=True)
class StepLimits:
    """Step-test limits (P class: response 2/f0 TVE, 4.5/f0 FE, 6/f0 RFE; delay 1/(4 rate); overshoot 5 %)."""

    tve_response: float
    fe_response: float
    rfe_response: float
    delay: float
    overshoot: float = 5.0

    @classmethod
    def for_class(cls, pmu_class: str, f0: float, rate: float) -> StepLimits:
        if pmu_class == "P":
            return cls(2.0 / f0, 4.5 / f0, 6.0 / f0, 1.0 / (4 * rate), 5.0)
        return cls(7.0 / rate, 14.0 / rate, 14.0 / rate, 1.0 / (4 * rate), 10.0)


@dataclass
class StepRun:
    """Frames of step runs merged on the time since the step (equivalent-time sampling)."""

    relative: list[np.ndarray] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)

    def add(self, series: Series, step_time: float, reference: Reference) -> None:
        self.relative.append(series.times - step_time)
        self.series.append(series)
        self.references.append(reference)


def _span(t: np.ndarray, bad: np.ndarray) -> float:
    """Time from the first to the last sample where ``bad`` holds, plus one sample spacing (the
    resolution: a single bad sample may stand for anything up to that); 0 if never."""
    if not bad.any():
        return 0.0
    spacing = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
    return float(t[bad].max() - t[bad].min()) + spacing


def step_checks(run: StepRun, kind: str, limits: StepLimits, steady: Limits) -> list[Check]:
    """Response times, delay and overshoot of a ``"magnitude"`` or ``"phase"`` step (of phasor 0),
    from every run's frames merged on the time since the step."""
    rel = np.concatenate(run.relative)
    order = np.argsort(rel, kind="stable")
    tve, fe, rfe, value = [], [], [], []
    for s, ref in zip(run.series, run.references, strict=True):
        e = errors(s, ref)
        tve.append(e[0])
        fe.append(e[1])
        rfe.append(e[2])
        x = s.phasors[:, 0]
        value.append(np.abs(x) if kind == "magnitude" else np.unwrap(np.angle(x)))
    t = rel[order]
    tve_a, fe_a, rfe_a, v = (np.concatenate(a)[order] for a in (tve, fe, rfe, value))
    before, after = float(np.median(v[t < -0.05])), float(np.median(v[t > 0.1]))
    step = after - before
    if abs(step) < 1e-12:
        raise FieldError("the series shows no step to evaluate")
    progress = (v - before) / step
    overshoot = 100 * max(0.0, float(np.max(progress)) - 1.0)
    return [
        Check("TVE response time", _span(t, tve_a > steady.tve), limits.tve_response, "s"),
        Check("FE response time", _span(t, fe_a > steady.fe), limits.fe_response, "s"),
        Check("RFE response time", _span(t, rfe_a > steady.rfe), limits.rfe_response, "s"),
        Check("|delay time|", abs(_half_way(t, progress)), limits.delay, "s"),
        Check("overshoot", overshoot, limits.overshoot, "%"),
    ]


def _half_way(t: np.ndarray, progress: np.ndarray) -> float:
    """When ``progress`` (0 before the step, 1 after) first reaches 0.5, interpolated between frames."""
    i = int(np.argmax(progress >= 0.5))
    if i == 0:
        return float(t[0])
    p0, p1 = progress[i - 1], progress[i]
    return float(t[i - 1] + (t[i] - t[i - 1]) * (0.5 - p0) / (p1 - p0))
