"""PMU frames from the library's other sources: the virtual testbed's PMUs and the DAQ agent."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from gridbus import Bus
from gridbus.daq.agent import DaqAgent, DaqConfig
from gridbus.daq.backend import Channel
from gridbus.pmu.testbed import TestbedPMUs
from gridbus.pmu.time import STAT_DATA_INVALID, TIME_BASE, from_soc_fracsec
from gridbus.timebase import TimeBase


def _take(reader, count: int, timeout: float = 5.0) -> list:
    got: list = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += reader.take(0.2)
    return got


def test_testbed_pmus_estimate_the_plant_bus_from_waveforms(domain, partition):
    epoch = float(int(time.time()))
    with Bus(domain, partition=partition) as bus:
        frames = bus.reader("PMU", "Measurement")
        pmus = TestbedPMUs(bus, ["PMU_1", "PMU_9"], 60.0, TimeBase(epoch, 1.0))
        configs = bus.reader("PMU", "Config").take(2.0)
        for step in range(1, 51):  # 0.5 s of plant steps; PMU_1 at 60.2 Hz, PMU_9 dead
            t = 0.01 * step
            true = {
                "PMU_1": {"V": 118.0, "angle": 0.3 + 2 * math.pi * 0.2 * t, "f": 60.2, "live": 1.0},
                "PMU_9": {"V": 0.0, "angle": 0.0, "f": 0.0, "live": 0.0},
            }
            pmus.publish(t, true)
        got = _take(frames, 40)
    assert {c.id for c in configs} == {"PMU_1", "PMU_9"}
    live = [s for s in got if s.id == "PMU_1"]
    assert len(live) >= 20
    for sample in live:
        frame = sample.data
        t = from_soc_fracsec(frame.soc, frame.fracsec) - epoch
        assert round(t * 60) == pytest.approx(t * 60, abs=1e-3), "frames on the 1/60 s grid of simulated time"
        assert frame.magnitude[0] == pytest.approx(118.0, rel=0.01) and frame.magnitude[3] < 1.0
        assert frame.angle[0] == pytest.approx(0.3 + 2 * math.pi * 0.2 * t, abs=0.01)
        assert frame.freq == pytest.approx(60.2, abs=0.02) and frame.stat & STAT_DATA_INVALID == 0
    dead = [s.data for s in got if s.id == "PMU_9"]
    assert dead and all(f.stat & STAT_DATA_INVALID == STAT_DATA_INVALID and f.freq == 0.0 for f in dead)


def test_daq_agent_publishes_pmu_frames_and_config(domain, partition):
    config = DaqConfig(rate=20.0, channels=[Channel("PMU_4", V=121.0, I=4.0, f=59.9, noise=0.0)])
    with Bus(domain, partition=partition) as bus:
        frames = bus.reader("PMU_4", "Measurement")
        agent = DaqAgent(bus, config)
        agent.run(1.0)
        got = _take(frames, 10)
        configs = bus.reader("PMU_4", "Config").take(2.0)
    assert len(got) >= 5 and configs and configs[0].data.f_nominal == 60.0 and configs[0].data.data_rate == 20
    frame = got[-1].data
    assert frame.idcode == 4 and len(frame.magnitude) == 6 and len(frame.angle) == 6
    np.testing.assert_allclose(frame.magnitude, [121.0] * 3 + [4.0] * 3, rtol=0.01)
    assert frame.freq == pytest.approx(59.9, abs=0.05)
    assert abs(from_soc_fracsec(frame.soc, frame.fracsec) - got[-1].source_time) < 1.5 / TIME_BASE
    assert frame.time_quality == 0x7, "the host clock: not locked, within 1 ms"
