"""``gridbus pmu test``: the C37.118.1 test conditions run through the virtual PMU chain.

Each test drives exactly known signals (:mod:`.signals`) through a
:class:`~.vpmu.VirtualPMUs` chain (waveform samples -> estimator -> frames)
and judges the frames with :mod:`.compliance`, which takes frames from any
source.  The conditions:

* steady: f0 - 2 Hz, f0, f0 + 2 Hz, and harmonics (10 % 3rd, 5 % 5th);
* ramp: f0 - 2 Hz to f0 + 2 Hz at 1 Hz/s;
* step: +10 % magnitude and +10 degree phase, each in ``STEP_RUNS`` runs with the step
  moved by 1/``STEP_RUNS`` of a frame (equivalent-time sampling);
* rocof: the seed's sequence, f0, +2 Hz over 1 s, hold 10 s, -2 Hz over 1 s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import FieldError
from .compliance import TESTS, Check, Limits, Series, StepLimits, StepRun, limits_for, steady_checks, step_checks
from .signals import TestSignal, make_signal, profile_breaks
from .vpmu import VirtualPMUs

STEP_RUNS = 10
STEP_AT = 0.5  # s: the step, after the estimator has settled


@dataclass
class Condition:
    """One test condition: its name, checks and the frames (for the figure)."""

    name: str
    checks: list[Check]
    times: np.ndarray
    series: Series
    signal: TestSignal

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


@dataclass
class TestReport:
    """What ``gridbus pmu test`` writes (report.json) and prints (the table)."""

    __test__ = False

    pmu: str
    test: str
    pmu_class: str
    f0: float
    rate: float
    conditions: list[Condition] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.conditions)

    def rows(self) -> list[dict[str, Any]]:
        return [{"condition": c.name} | check.row() for c in self.conditions for check in c.checks]

    def to_json(self) -> dict[str, Any]:
        return {
            "pmu": self.pmu,
            "test": self.test,
            "class": self.pmu_class,
            "f_nominal": self.f0,
            "rate": self.rate,
            "pass": self.passed,
            "checks": self.rows(),
        }


def _series(group: VirtualPMUs, seconds: float) -> Series:
    times, est = group.series(seconds)
    return Series(times, est.phasors[0], est.freq[0], est.rocof[0])


def _run_signal(name: str, signal: TestSignal, seconds: float, limits: Limits, rate: float, cls: str) -> Condition:
    series = _series(VirtualPMUs([signal], signal.f0, rate, cls), seconds)
    keep = series.times >= 0.2  # the first frames: the estimator's window still reaches before t = 0
    return judge_condition(name, signal, series.where(keep), limits)


def judge_condition(name: str, signal: TestSignal, series: Series, limits: Limits) -> Condition:
    """TVE, FE and RFE of frames from any source against ``signal``, outside the exclusion intervals."""
    checks = steady_checks(series, signal.reference, limits, profile_breaks(signal))
    return Condition(name, checks, series.times, series, signal)


def judge_step(name: str, signal: TestSignal, series: Series, kind: str, rate: float, cls: str) -> Condition:
    """Step response of frames from one run (resolution: one frame; the virtual chain interleaves 10)."""
    run = StepRun()
    run.add(series, signal.steps[0], signal.reference)
    checks = step_checks(run, kind, StepLimits.for_class(cls, signal.f0, rate), Limits())
    return Condition(name, checks, series.times, series, signal)


def _step(kind: str, f0: float, rate: float, cls: str) -> Condition:
    run = StepRun()
    first: tuple[Series, TestSignal] | None = None
    for n in range(STEP_RUNS):
        at = STEP_AT + n / (STEP_RUNS * rate)
        signal = make_signal("step-mag" if kind == "magnitude" else "step-phase", f0, start=at)
        series = _series(VirtualPMUs([signal], f0, rate, cls), STEP_AT + 0.5)
        series = series.where(series.times >= 0.2)
        run.add(series, at, signal.reference)
        first = first or (series, signal)
    assert first is not None
    checks = step_checks(run, kind, StepLimits.for_class(cls, f0, rate), Limits())
    return Condition(f"{kind} step", checks, first[0].times, first[0], first[1])


def run_test(pmu: str, test: str, f0: float = 60.0, rate: float = 60.0, pmu_class: str = "P") -> TestReport:
    """Run one compliance test of ``TESTS`` on a virtual PMU named ``pmu``."""
    if test not in TESTS:
        raise FieldError(f"unknown test {test!r}; known: {', '.join(TESTS)}")
    report = TestReport(pmu, test, pmu_class, f0, rate)
    limits = limits_for(test, pmu_class, rate)
    if test == "steady":
        for offset in (-2.0, 0.0, 2.0):
            signal = make_signal("steady", f0, offset=offset)
            report.conditions.append(_run_signal(f"{f0 + offset:g} Hz", signal, 2.0, limits, rate, pmu_class))
        signal = make_signal("harmonics", f0)
        report.conditions.append(_run_signal("harmonics", signal, 2.0, limits, rate, pmu_class))
    elif test == "ramp":
        report.conditions.append(_run_signal("ramp 1 Hz/s", make_signal("ramp", f0), 6.0, limits, rate, pmu_class))
    elif test == "rocof":
        signal = make_signal("rocof", f0)
        report.conditions.append(_run_signal("ROCOF sequence", signal, 14.0, limits, rate, pmu_class))
    else:
        report.conditions += [_step("magnitude", f0, rate, pmu_class), _step("phase", f0, rate, pmu_class)]
    return report
