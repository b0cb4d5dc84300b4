"""The virtual testbed's PMUs: plant bus voltages -> ADC waveforms -> phasor estimator -> frames.

The plant solves phasors, but a PMU measures waveforms: so each tick the
testbed's true bus voltage (magnitude, angle in the nominal frame, frequency)
drives the DAQ agent's waveform model (:class:`gridbus.daq.backend.SimulatedADC`,
with its ADC noise), and the samples go through the same C37.118.1 estimator
as ``gridbus pmu sim``.  Frames come out at the reporting rate on the
simulated-time grid, each once the estimator's window after it has been
sampled (a P-class frame is a cycle and a half late), stamped with the
testbed's time base (source timestamp = SOC/FRACSEC = the frame's instant).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..bus import Bus
from ..daq.backend import Channel, SimulatedADC
from ..timebase import TimeBase
from .estimator import PhasorEstimator
from .frames import FramePublisher

SAMPLES_PER_CYCLE = 48
ADC_NOISE = 0.0002  # fraction of the ADC's full scale (400 V): a PMU's input is better than the DAQ's


class TestbedPMUs:
    """Every PMU of a testbed, estimated together (numpy over PMUs and frames)."""

    __test__ = False  # not a pytest class

    def __init__(
        self,
        bus: Bus,
        ids: Sequence[str],
        f0: float,
        clock: TimeBase,
        rate: float | None = None,
        pmu_class: str = "P",
    ) -> None:
        self.ids = list(ids)
        self.f0, self.clock = f0, clock
        if not self.ids:  # a system without PMUs may have any nominal frequency
            return
        self.rate = float(rate or f0)
        self.fs = f0 * SAMPLES_PER_CYCLE
        self.publisher = FramePublisher(bus, self.ids, f0, self.rate, station="testbed")
        self.estimator = PhasorEstimator(pmu_class, f0, self.fs, self.rate)
        self.adc = SimulatedADC([Channel(i, V=0.0, I=0.0, f=f0, noise=ADC_NOISE) for i in self.ids], self.fs)
        self.buffer = np.zeros((len(self.ids), 6, 0))
        self.first = 0  # sample index of buffer[..., 0]; sample j is at simulated time j / fs
        self.produced = 0
        self.next_frame = 0
        self.live = np.zeros(len(self.ids), dtype=bool)

    def publish(self, t: float, true: Mapping[str, Mapping[str, float]]) -> int:
        """Sample the waveforms up to simulated time ``t`` and publish the frames now complete."""
        if not self.ids:
            return 0
        self._sample(t, true)
        last = self.first + self.buffer.shape[2] - 1
        ready = []
        while True:
            centre = round(self.next_frame * self.fs / self.rate)
            if centre + self.estimator.reach > last:
                break
            if centre - self.estimator.reach >= self.first:  # (the very first frames lack a past)
                ready.append(self.next_frame)
            self.next_frame += 1
        if ready:
            times = np.array(ready) / self.rate
            est = self.estimator.estimate(self.buffer, self.first / self.fs, times)
            for n, frame_t in enumerate(times.tolist()):
                self.publisher.publish(
                    self.clock.stamp(frame_t), est.phasors[:, n], est.freq[:, n], est.rocof[:, n], ~self.live
                )
        keep = self.estimator.reach * 2 + 2
        if self.buffer.shape[2] > keep:
            self.first += self.buffer.shape[2] - keep
            self.buffer = self.buffer[:, :, -keep:]
        return len(ready)

    def _sample(self, t: float, true: Mapping[str, Mapping[str, float]]) -> None:
        n = math.floor(t * self.fs + 1e-9) + 1 - self.produced
        if n <= 0:
            return
        phase = self.adc.phase  # the ADC's own array: setting an item locks its waveform
        for k, (pmu_id, channel) in enumerate(zip(self.ids, self.adc.channels, strict=True)):
            values = true[pmu_id]
            channel.V, channel.f = values["V"], values["f"] or self.f0
            channel.running = self.live[k] = bool(values["live"])
            # lock the waveform onto the plant's angle at t: the ADC turns at channel.f from its last sample
            last = (self.produced - 1) / self.fs
            theta = 2 * math.pi * (self.f0 * t - channel.f * (t - last)) + values["angle"]
            phase[k] = theta % (2 * math.pi)
        self.buffer = np.concatenate([self.buffer, self.adc.read(n)], axis=2)
        self.produced += n
