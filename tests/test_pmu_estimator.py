"""The C37.118.1 estimators on exactly known signals: steady state, off-nominal, harmonics, ramps, steps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gridbus.errors import FieldError
from gridbus.pmu.estimator import PhasorEstimator
from gridbus.pmu.signals import make_signal
from gridbus.pmu.vpmu import VirtualPMUs


def _errors(kind: str, cls: str, f0: float = 60.0, rate: float = 60.0, seconds: float = 2.0, **kw):
    signal = make_signal(kind, f0, **kw)
    times, est = VirtualPMUs([signal], f0, rate, cls).series(seconds)
    ref, f, r = signal.reference(times)
    tve = 100 * np.max(np.abs(est.phasors[0] - ref) / np.abs(ref), axis=1)
    return times, tve, np.abs(est.freq[0] - f), np.abs(est.rocof[0] - r)


@pytest.mark.parametrize("cls", ["P", "M"])
@pytest.mark.parametrize("offset", [-2.0, -0.5, 0.0, 1.3, 2.0])
def test_steady_state_off_nominal_is_within_the_limits(cls, offset):
    _, tve, fe, rfe = _errors("steady", cls, offset=offset)
    assert tve.max() < 0.1, "TVE limit is 1 %; the gain compensation keeps it far below"
    assert fe.max() < 1e-4 and rfe.max() < 1e-3


@pytest.mark.parametrize("cls", ["P", "M"])
def test_harmonics_are_rejected(cls):
    _, tve, fe, _ = _errors("harmonics", cls)  # 10 % 3rd + 5 % 5th
    assert tve.max() < 0.1 and fe.max() < 0.005


def test_noise_stays_inside_the_tve_limit_at_50_hz():
    _, tve, fe, _ = _errors("noise", "P", f0=50.0, rate=50.0)
    assert tve.max() < 1.0 and fe.max() < 0.05


def test_frequency_ramp_is_tracked_with_its_rocof():
    times, tve, fe, rfe = _errors("ramp", "P", seconds=6.0)  # 58 -> 62 Hz at 1 Hz/s from t = 1 s
    inside = (times > 1.1) & (times < 4.9)
    assert tve[inside].max() < 1.0 and fe[inside].max() < 0.01 and rfe[inside].max() < 0.1
    # ramp ends: the reference ROCOF jumps, the estimate cannot (what the exclusion intervals are for)
    assert rfe.max() > 0.1


def test_magnitude_step_settles_within_two_cycles():
    signal = make_signal("step-mag", 60.0, start=0.5)
    times, est = VirtualPMUs([signal], 60.0, 60.0, "P").series(1.0)
    mag = np.abs(est.phasors[0, :, 0])
    assert mag[times < 0.5 - 1 / 60].max() == pytest.approx(120.0, rel=1e-6)
    assert mag[times > 0.5 + 1 / 60].min() == pytest.approx(132.0, rel=1e-6)  # +10 %, a cycle later


def test_group_estimates_each_pmu_as_alone():
    signals = [make_signal("steady", 60.0, offset=d, phase0=p) for d, p in ((0.5, 0.0), (-1.0, 1.0), (0.0, -2.5))]
    _, together = VirtualPMUs(signals, 60.0, 30.0).frames(10, 20)
    for n, signal in enumerate(signals):
        _, alone = VirtualPMUs([signal], 60.0, 30.0).frames(10, 20)
        np.testing.assert_allclose(together.phasors[n], alone.phasors[0])
        np.testing.assert_allclose(together.freq[n], alone.freq[0])


def test_angles_are_referenced_to_the_utc_second():
    # a cosine at nominal with phase 0.7 rad reads 0.7 rad in every frame, at any rate
    signal = make_signal("steady", 50.0, phase0=0.7)
    _, est = VirtualPMUs([signal], 50.0, 25.0).frames(0, 25)
    np.testing.assert_allclose(np.angle(est.phasors[0, :, 0]), 0.7, atol=1e-9)
    np.testing.assert_allclose(np.angle(est.phasors[0, :, 1]), 0.7 - 2 * math.pi / 3, atol=1e-9)


def test_bad_estimator_settings_are_refused():
    with pytest.raises(FieldError, match="PMU class must be P or M"):
        PhasorEstimator("X")
    with pytest.raises(FieldError, match="whole number >= 8 of samples"):
        PhasorEstimator("P", 60.0, 1000.0)
    with pytest.raises(FieldError, match="not a C37.118 rate for 50 Hz"):
        VirtualPMUs([make_signal("steady", 50.0)], 50.0, 60.0)
    with pytest.raises(FieldError, match="unknown signal 'square'"):
        make_signal("square")
