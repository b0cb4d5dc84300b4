"""Compliance metrics against hand-computed cases, and the test suite on the virtual PMU chain."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gridbus.errors import FieldError
from gridbus.pmu.compliance import (
    Limits,
    Series,
    StepLimits,
    StepRun,
    errors,
    limits_for,
    steady_checks,
    step_checks,
)
from gridbus.pmu.report import write_report
from gridbus.pmu.signals import make_signal
from gridbus.pmu.suite import run_test


def _frames_of(signal, times, scale=1.0, turn=0.0, df=0.0, dr=0.0):
    """Frames a PMU with a known error would send: every phasor scaled and turned, f and ROCOF offset."""
    ref, f, r = signal.reference(times)
    phasors = ref * scale * np.exp(1j * turn)
    return [(t, list(p), fi + df, ri + dr) for t, p, fi, ri in zip(times, phasors, f, r, strict=True)]


def test_known_errors_give_known_tve_fe_rfe():
    signal = make_signal("steady", 60.0, offset=0.5)
    times = np.arange(60) / 60
    series = Series.from_frames(_frames_of(signal, times, scale=1.01))
    tve, fe, rfe = errors(series, signal.reference)
    np.testing.assert_allclose(tve, 1.0)  # 1 % magnitude error = 1 % TVE
    turned = Series.from_frames(_frames_of(signal, times, turn=0.01, df=0.003, dr=-0.02))
    tve, fe, rfe = errors(turned, signal.reference)
    np.testing.assert_allclose(tve, 100 * 2 * math.sin(0.005))  # |e^{j0.01} - 1| = 0.99998 %
    np.testing.assert_allclose(fe, 0.003)
    np.testing.assert_allclose(rfe, 0.02)


def test_steady_checks_pass_and_fail_at_the_limits():
    signal = make_signal("steady", 50.0)
    times = np.arange(50) / 50
    good = steady_checks(Series.from_frames(_frames_of(signal, times, scale=1.009)), signal.reference, Limits())
    assert [c.passed for c in good] == [True, True, True]
    bad = steady_checks(Series.from_frames(_frames_of(signal, times, df=0.006)), signal.reference, Limits())
    assert [c.name for c in bad if not c.passed] == ["max FE"] and bad[1].measured == pytest.approx(0.006)


def test_exclusion_intervals_drop_frames_near_ramp_ends():
    signal = make_signal("rocof", 50.0)  # breaks at 1, 2, 12, 13 s
    times = np.arange(14 * 50) / 50
    frames = _frames_of(signal, times)
    t, p, f, r = frames[100]  # t = 2.0 s, a ramp end: a PMU may be far off here
    frames[100] = (t, p, f + 1.0, r + 50.0)
    limits = limits_for("rocof", "P", 50.0)
    assert limits.exclusion == pytest.approx(0.04)
    checks = steady_checks(Series.from_frames(frames), signal.reference, limits, (1.0, 2.0, 12.0, 13.0))
    assert all(c.passed for c in checks)
    with pytest.raises(FieldError, match="no frames"):
        Series.from_frames([])


def test_step_metrics_of_an_ideal_and_an_overshooting_pmu():
    limits = StepLimits.for_class("P", 60.0, 60.0)
    run, ringing = StepRun(), StepRun()
    for n in range(10):
        at = 0.5 + n / 600
        signal = make_signal("step-mag", 60.0, start=at)
        times = np.arange(60) / 60
        run.add(Series.from_frames(_frames_of(signal, times)), at, signal.reference)
        frames = _frames_of(signal, times)
        k = int(np.argmax(times >= at))  # the first frame after the step reads 12 % high
        t, p, f, r = frames[k]
        frames[k] = (t, [x * 1.12 / 1.1 for x in p], f, r)
        ringing.add(Series.from_frames(frames), at, signal.reference)
    ideal = {c.name: c for c in step_checks(run, "magnitude", limits, Limits())}
    assert ideal["TVE response time"].measured == 0.0 and ideal["overshoot"].measured == pytest.approx(0.0)
    assert ideal["|delay time|"].measured <= 1 / 600  # the crossing lies within one equivalent-time step
    over = {c.name: c for c in step_checks(ringing, "magnitude", limits, Limits())}
    assert over["overshoot"].measured == pytest.approx(20.0, rel=1e-6)  # 2 % of 120 V over a 12 V step
    assert not over["overshoot"].passed


@pytest.mark.parametrize("test", ["steady", "ramp", "step", "rocof"])
def test_virtual_pmu_passes_p_class(test):
    report = run_test("PMU_1", test, 50.0, 50.0, "P")
    assert report.passed, report.rows()
    assert all(0 <= r["measured"] <= r["limit"] for r in report.rows())


def test_report_files(tmp_path):
    report = run_test("PMU_7", "rocof", 50.0, 50.0, "M")
    paths = write_report(report, tmp_path / "out")
    data = json.loads(paths[0].read_text())
    assert data["pmu"] == "PMU_7" and data["class"] == "M" and data["pass"] is True
    assert {r["check"] for r in data["checks"]} == {"max TVE", "max FE", "max RFE"}
    assert paths[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
