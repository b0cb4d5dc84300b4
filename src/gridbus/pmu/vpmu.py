"""Virtual PMUs: generated waveforms -> C37.118.1 estimator -> C37.118 frames on the bus.

A :class:`VirtualPMUs` group shares a nominal frequency, reporting rate and
class, and computes any range of frames for all its PMUs at once (one numpy
estimate over PMUs x frames): this is what lets one core run many of them.
Frame ``k`` describes UTC time ``origin + k / rate`` where ``origin`` is a whole
UTC second, so FRACSEC counts whole frames and the phase reference (a cosine
at f0 locked to the UTC second) is the signals' own ``cos(2*pi*f0*t)``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from ..bus import Bus
from .estimator import Estimate, PhasorEstimator
from .frames import FramePublisher, check_rate
from .signals import TestSignal
from .time import SyncState

log = logging.getLogger(__name__)
SAMPLES_PER_CYCLE = 48
MAX_BATCH = 30  # frames computed together when catching up (bounds memory and latency)


class VirtualPMUs:
    """PMUs fed by :class:`~.signals.TestSignal` waveforms, estimated together."""

    def __init__(
        self,
        signals: Sequence[TestSignal],
        f0: float = 60.0,
        rate: float = 60.0,
        pmu_class: str = "P",
        samples_per_cycle: int = SAMPLES_PER_CYCLE,
        seed: int = 0,
    ) -> None:
        check_rate(rate, f0)
        self.signals = list(signals)
        self.f0, self.rate = f0, rate
        self.fs = f0 * samples_per_cycle
        self.estimator = PhasorEstimator(pmu_class, f0, self.fs, rate)
        self.rng = np.random.default_rng(seed)

    @property
    def latency(self) -> float:
        """Seconds after a frame's instant before its estimate can be made (the window's far half)."""
        return self.estimator.reach / self.fs

    def frames(self, first: int, stop: int) -> tuple[np.ndarray, Estimate]:
        """Frame times (s from the origin) and estimates of frames ``first..stop-1`` of every PMU."""
        times = np.arange(first, stop) / self.rate
        reach = self.estimator.reach
        j0 = round(times[0] * self.fs) - reach
        j1 = round(times[-1] * self.fs) + reach + 1
        t = np.arange(j0, j1) / self.fs
        x = np.stack([signal.waveform(t, self.rng) for signal in self.signals])
        return times, self.estimator.estimate(x, j0 / self.fs, times)

    def series(self, seconds: float) -> tuple[np.ndarray, Estimate]:
        """Every frame of the first ``seconds`` (what a compliance run reads), in batches."""
        total = round(seconds * self.rate)
        parts = [self.frames(k, min(total, k + MAX_BATCH * 10)) for k in range(0, total, MAX_BATCH * 10)]
        times = np.concatenate([p[0] for p in parts])
        est = Estimate(
            *(np.concatenate([getattr(p[1], n) for p in parts], axis=1) for n in ("phasors", "freq", "rocof"))
        )
        return times, est


def run_realtime(
    bus: Bus,
    ids: Sequence[str],
    group: VirtualPMUs,
    duration: float | None,
    origin: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    unlocked: float | None = None,
) -> FramePublisher:
    """Publish the group's frames as their windows fill in wall-clock time, until ``duration`` s.

    The Config goes out first (transient-local).  Each frame is published as soon
    as the estimator's window after it has passed (:attr:`VirtualPMUs.latency`).
    ``unlocked`` (s) plays a time source that lost its lock at start with that uncertainty:
    the time-quality code and STAT's sync and unlocked-time bits show it.
    """
    publisher = FramePublisher(bus, ids, group.f0, group.rate, station="vpmu")
    origin = math.floor(time.time()) if origin is None else origin
    started = time.time()
    k = math.ceil((time.time() - origin) * group.rate)
    end = None if duration is None else k + round(duration * group.rate)
    while (end is None or k < end) and not should_stop():
        now = time.time() - origin
        ready = math.floor((now - group.latency) * group.rate)  # newest frame whose window is complete
        if ready < k:
            time.sleep(max(0.0, (k / group.rate + group.latency) - now))
            continue
        stop = min(ready + 1, k + MAX_BATCH, end if end is not None else ready + 1)
        times, est = group.frames(k, stop)
        if unlocked is not None:
            publisher.sync = SyncState(locked=False, uncertainty=unlocked, unlocked_for=time.time() - started)
        for n, t in enumerate(times.tolist()):
            publisher.publish(origin + t, est.phasors[:, n], est.freq[:, n], est.rocof[:, n])
        k = stop
    log.info("published %d frames of %d PMUs", publisher.published, len(ids))
    return publisher
