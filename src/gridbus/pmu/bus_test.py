"""Compliance of frames read from the bus: any PMU fed the standard's test signal from a known UTC second.

The PMU under test may be a virtual one in another process (``gridbus pmu sim
--origin T``) or a real PMU behind the C37.118 gateway whose input a signal
generator plays from UTC second ``T``.  Its frames are collected for the test's
duration, turned into a :class:`~.compliance.Series` (time from ``T``, phasors
in gridbus order VA, VB, VC, IA, IB, IC, frequency, ROCOF) and judged against
the exact reference of the same signal (:func:`BUS_SIGNALS`).
"""

from __future__ import annotations

import time

import numpy as np

from ..bus import Bus
from ..errors import FieldError, GridbusError
from .compliance import TESTS, Series, limits_for
from .signals import make_signal
from .suite import TestReport, judge_condition, judge_step
from .time import from_soc_fracsec

BUS_SIGNALS = {"steady": ("steady", 3.0), "ramp": ("ramp", 6.0), "step": ("step", 2.0), "rocof": ("rocof", 14.0)}
"""Per test: the signal the PMU must be fed (see :func:`.signals.make_signal`) and the seconds judged."""
SETTLE = 0.2  # s after the origin before frames count (the PMU's window must be inside the signal)


def collect(bus: Bus, pmu_id: str, origin: float, seconds: float, timeout: float) -> Series:
    """Frames of ``pmu_id`` measured between ``origin + SETTLE`` and ``origin + seconds`` (UTC)."""
    configs = bus.reader(pmu_id, "Config").take(min(5.0, timeout))
    if not configs:
        raise GridbusError(f"no PMU_Config from {pmu_id} within {min(5.0, timeout):g} s: cannot read its FRACSEC")
    time_base = configs[-1].data.time_base
    reader = bus.reader(pmu_id, "Measurement")
    rows: dict[int, tuple[float, list[complex], float, float]] = {}
    deadline = time.monotonic() + timeout
    newest = -1.0
    while newest < seconds and time.monotonic() < deadline:
        for sample in reader.take(0.2):
            frame = sample.data
            t = from_soc_fracsec(frame.soc, frame.fracsec, time_base) - origin
            newest = max(newest, t)
            if SETTLE <= t <= seconds:
                if len(frame.magnitude) < 6:
                    raise FieldError(f"{pmu_id}: a frame with {len(frame.magnitude)} phasors; the test needs VA..IC")
                phasors = (np.array(frame.magnitude[:6]) * np.exp(1j * np.array(frame.angle[:6]))).tolist()
                rows[frame.fracsec + frame.soc * time_base] = (t, phasors, frame.freq, frame.rocof)
    if newest < seconds:
        raise GridbusError(
            f"{pmu_id}: frames up to {seconds:g} s after the origin did not arrive within {timeout:g} s "
            f"(newest: {newest:.2f} s; {len(rows)} frames kept)"
        )
    return Series.from_frames(sorted(rows.values()))


def run_bus_test(
    bus: Bus, pmu: str, test: str, origin: float, f0: float, rate: float, pmu_class: str, timeout: float
) -> TestReport:
    """Collect and judge ``pmu``'s frames for ``test`` (the PMU must be fed ``BUS_SIGNALS[test]`` from ``origin``)."""
    if test not in TESTS:
        raise FieldError(f"unknown test {test!r}; known: {', '.join(TESTS)}")
    kind, seconds = BUS_SIGNALS[test]
    signal = make_signal(kind, f0)
    series = collect(bus, pmu, origin, seconds, timeout)
    report = TestReport(pmu, test, pmu_class, f0, rate)
    if test == "step":
        report.conditions.append(judge_step(f"{kind} (bus, one run)", signal, series, "magnitude", rate, pmu_class))
    else:
        limits = limits_for(test, pmu_class, rate)
        report.conditions.append(judge_condition(f"{kind} (bus)", signal, series, limits))
    return report
